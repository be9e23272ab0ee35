package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"slices"

	"github.com/p2prelay/p2prelay/peer"
	"github.com/p2prelay/p2prelay/protocol"
)

// ListenCmd waits for pair requests and prints every event.
type ListenCmd struct {
	AnswerFlags
}

// Run listens until interrupted (exit 0) or the relay closes the device.
func (c *ListenCmd) Run(g *Globals, env *Env, pr *printer) error {
	id, err := g.requireID()
	if err != nil {
		return err
	}
	sc, err := c.session(id)
	if err != nil {
		return err
	}
	s, err := openSession(env, g, pr, sc)
	if err != nil {
		return err
	}
	defer s.close()
	select {
	case <-env.Ctx.Done():
		return nil
	case <-s.p.Done():
		return s.ended()
	}
}

// EmitCmd sends one event and exits.
type EmitCmd struct {
	Target string   `help:"The device to send to." required:""`
	Event  string   `arg:"" help:"Event name."`
	Args   []string `arg:"" optional:"" help:"Arguments: each is JSON when it parses ('{\"x\":1}', 2, true), otherwise a string."`
	Ack    bool     `help:"Wait for the peer's answer and print it."`
	Wait   bool     `help:"Keep trying until the target is online and free."`
}

// Run connects, pairs, sends, unpairs.
func (c *EmitCmd) Run(g *Globals, env *Env, pr *printer) error {
	id, err := g.requireID()
	if err != nil {
		return err
	}
	if err := validTarget("--target", c.Target); err != nil {
		return err
	}
	args, err := parseArgs(c.Args)
	if err != nil {
		return err
	}
	pr.quiet = !g.JSON
	s, err := openSession(env, g, pr, sessionConfig{id: id, accept: peer.AcceptNone(), wait: c.Wait})
	if err != nil {
		return err
	}
	defer s.close()
	if err := s.pair(env.Ctx, c.Target); err != nil {
		return pairError{target: c.Target, err: err}
	}
	if c.Ack {
		answer, err := s.p.EmitAck(env.Ctx, c.Event, args...)
		if err != nil {
			return requestError{"emit", c.Event, err}
		}
		pr.ack(c.Event, answer)
	} else {
		if err := s.p.Emit(env.Ctx, c.Event, args...); err != nil {
			return requestError{"emit", c.Event, err}
		}
		pr.sent(c.Event, args)
	}
	ctx, cancel := context.WithTimeout(context.Background(), g.Timeout)
	defer cancel()
	if err := s.unpair(ctx); err != nil && !errors.Is(err, peer.ErrNotPaired) {
		return err
	}
	return nil
}

// DevicesCmd lists the devices.
type DevicesCmd struct {
	Available bool `help:"Only the devices free to pair."`
}

// Run connects (as --id, or a throwaway id left out of the list), lists,
// disconnects.
func (c *DevicesCmd) Run(g *Globals, env *Env, pr *printer) error {
	id := g.ID
	throwaway := id == ""
	if throwaway {
		var b [4]byte
		_, _ = rand.Read(b[:])
		id = "p2ppeer-" + hex.EncodeToString(b[:])
	} else if _, err := g.requireID(); err != nil {
		return err
	}
	pr.quiet = !g.JSON
	s, err := openSession(env, g, pr, sessionConfig{id: id, accept: peer.AcceptNone()})
	if err != nil {
		return err
	}
	defer s.close()
	list, err := s.p.Devices(env.Ctx, c.Available)
	if err != nil {
		return err
	}
	if throwaway {
		list = slices.DeleteFunc(list, func(d protocol.DeviceEntry) bool { return d.ID == id })
	}
	pr.devices(list)
	return nil
}
