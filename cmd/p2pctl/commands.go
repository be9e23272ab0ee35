package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/p2prelay/p2prelay/admin/adminapi"
	"github.com/p2prelay/p2prelay/admin/adminclient"
	"github.com/p2prelay/p2prelay/tui"
)

// DashboardCmd opens the dashboard.
type DashboardCmd struct{}

// Run shows the dashboard until the operator quits.
func (c *DashboardCmd) Run(ctx context.Context, g *Globals) error {
	cl, err := g.client()
	if err != nil {
		return err
	}
	sub := cl.Subscribe(ctx)
	defer sub.Close()
	m := tui.New(tui.Config{Updates: sub.Updates(), Commands: sub, URL: g.URL})
	_, err = tea.NewProgram(m, tea.WithAltScreen(), tea.WithContext(ctx)).Run()
	if err != nil && ctx.Err() != nil {
		return nil // interrupted: a normal way out
	}
	return err
}

// DevicesCmd lists devices.
type DevicesCmd struct {
	Available bool `help:"Only the devices that can be asked to pair (no peer, no pairing under way)."`
	JSON      bool `help:"Print a JSON array of device objects."`
}

// Run prints the devices.
func (c *DevicesCmd) Run(ctx context.Context, g *Globals, out io.Writer) error {
	snap, err := state(ctx, g)
	if err != nil {
		return err
	}
	devs := make([]adminapi.Device, 0, len(snap.Devices))
	for _, d := range snap.Devices {
		if !c.Available || d.Available {
			devs = append(devs, d)
		}
	}
	if c.JSON {
		return printJSON(out, devs)
	}
	return table(out, "ID\tAVAILABLE\tPEER\tTRANSPORT\tCLIENT\tADDRESS\tCONNECTED", len(devs), func(i int) string {
		d := devs[i]
		return fmt.Sprintf("%s\t%v\t%s\t%s\t%s/%d\t%s\t%s", d.ID, d.Available, dash(d.Peer), d.Transport, d.Generation, d.EngineIO, d.Address, d.ConnectedAt.UTC().Format(time.RFC3339))
	})
}

// PairsCmd lists pairs.
type PairsCmd struct {
	JSON bool `help:"Print a JSON array of pair objects."`
}

// Run prints the pairs.
func (c *PairsCmd) Run(ctx context.Context, g *Globals, out io.Writer) error {
	snap, err := state(ctx, g)
	if err != nil {
		return err
	}
	if c.JSON {
		return printJSON(out, snap.Pairs)
	}
	return table(out, "A (ASKED)\tB\tSINCE\tMESSAGES", len(snap.Pairs), func(i int) string {
		p := snap.Pairs[i]
		return fmt.Sprintf("%s\t%s\t%s\t%d", p.A, p.B, p.Since.UTC().Format(time.RFC3339), p.Messages)
	})
}

// WatchCmd streams events.
type WatchCmd struct {
	JSON  bool `help:"Print each event as a JSON object."`
	Count int  `help:"Exit after this many events (0: run until interrupted)." default:"0"`
	Stats bool `help:"Also print the counters the relay sends once a second."`
}

// Run prints events until Count is reached or ctx ends.
func (c *WatchCmd) Run(ctx context.Context, g *Globals, out io.Writer) error {
	if c.Count < 0 {
		return fmt.Errorf("--count must not be negative, got %d", c.Count)
	}
	cl, err := g.client()
	if err != nil {
		return err
	}
	sub := cl.Subscribe(ctx)
	defer sub.Close()
	return watch(sub.Updates(), out, g.Stderr, c.JSON, c.Stats, c.Count)
}

// watch prints updates: nothing for the first snapshot, a resync line for
// later ones, one line per delta. Before the first snapshot, a refused
// token or an unreachable relay ends it with that error; later drops are
// reported on errOut and retried.
func watch(updates <-chan adminapi.Update, out, errOut io.Writer, asJSON, stats bool, count int) error {
	synced, printed := false, 0
	enc := json.NewEncoder(out)
	for u := range updates {
		switch {
		case u.Status == adminapi.StatusUnauthorized || (u.Status == adminapi.StatusDown && !synced):
			return u.Err
		case u.Status == adminapi.StatusDown:
			fmt.Fprintf(errOut, "p2pctl: %v; reconnecting\n", u.Err)
		}
		if u.Snapshot != nil {
			if synced {
				if err := printResync(out, enc, asJSON, u.Snapshot); err != nil {
					return err
				}
			}
			synced = true
		}
		for _, d := range u.Deltas {
			if d.Kind == adminapi.KindStats && !stats {
				continue
			}
			var err error
			if asJSON {
				err = enc.Encode(d)
			} else {
				_, err = fmt.Fprintf(out, "%s #%d %s %s\n", d.Time.UTC().Format(time.RFC3339Nano), d.Seq, d.Kind, d.Summary())
			}
			if err != nil {
				return err
			}
			printed++
			if count > 0 && printed >= count {
				return nil
			}
		}
	}
	return nil
}

func printResync(out io.Writer, enc *json.Encoder, asJSON bool, snap *adminapi.Snapshot) error {
	if asJSON {
		return enc.Encode(map[string]any{"kind": "resync", "seq": snap.Seq, "time": snap.Time, "devices": len(snap.Devices), "pairs": len(snap.Pairs)})
	}
	_, err := fmt.Fprintf(out, "%s #%d resync %d devices, %d pairs (events may have been missed)\n", snap.Time.UTC().Format(time.RFC3339Nano), snap.Seq, len(snap.Devices), len(snap.Pairs))
	return err
}

// KickCmd disconnects a device.
type KickCmd struct {
	ID string `arg:"" help:"The device to disconnect."`
}

// Run kicks the device.
func (c *KickCmd) Run(ctx context.Context, g *Globals, out io.Writer) error {
	return command(ctx, g, out, (*adminclient.Client).Kick, c.ID, adminapi.CommandKick)
}

// UnpairCmd breaks a pair.
type UnpairCmd struct {
	ID string `arg:"" help:"A device of the pair to break (either side)."`
}

// Run breaks the pair.
func (c *UnpairCmd) Run(ctx context.Context, g *Globals, out io.Writer) error {
	return command(ctx, g, out, (*adminclient.Client).Unpair, c.ID, adminapi.CommandUnpair)
}

// command runs one operator command (adminapi.CommandKick, ...) and says it
// was done.
func command(ctx context.Context, g *Globals, out io.Writer, run func(*adminclient.Client, context.Context, string) error, id, name string) error {
	cl, err := g.client()
	if err != nil {
		return err
	}
	if err := run(cl, ctx, id); err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "%s %s\n", adminapi.CommandVerb(name), id)
	return err
}

func state(ctx context.Context, g *Globals) (*adminapi.Snapshot, error) {
	cl, err := g.client()
	if err != nil {
		return nil, err
	}
	return cl.State(ctx)
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table prints n rows under a header, aligned in columns.
func table(w io.Writer, header string, n int, line func(i int) string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for i := range n {
		fmt.Fprintln(tw, line(i))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
