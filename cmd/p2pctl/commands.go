package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
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
	header := "ID\tAVAILABLE\tPEER\tTRANSPORT\tCLIENT\tADDRESS\tCONNECTED"
	if snap.Clustered() {
		header += "\tNODE"
	}
	return table(out, header, len(devs), func(i int) string {
		d := devs[i]
		line := fmt.Sprintf("%s\t%v\t%s\t%s\t%s/%d\t%s\t%s", d.ID, d.Available, dash(d.Peer), d.Transport, d.Generation, d.EngineIO, d.Address, d.ConnectedAt.UTC().Format(time.RFC3339))
		if snap.Clustered() {
			line += "\t" + dash(d.Node)
		}
		return line
	})
}

// DeviceCmd prints one device's detail.
type DeviceCmd struct {
	ID   string `arg:"" help:"The device."`
	JSON bool   `help:"Print the device as a JSON object."`
}

// Run prints what the relay knows of the device.
func (c *DeviceCmd) Run(ctx context.Context, g *Globals, out io.Writer) error {
	cl, err := g.client()
	if err != nil {
		return err
	}
	det, err := cl.Device(ctx, c.ID)
	if err != nil {
		return err
	}
	if c.JSON {
		return printJSON(out, det)
	}
	peer := det.Peer
	if det.Pairing != "" {
		peer = "pairing with " + det.Pairing
	}
	watched := "no"
	if det.Watched {
		watched = fmt.Sprintf("yes, %d events left out over the relay's bound", det.Dropped)
	}
	rows := [][2]string{
		{"ID", det.ID},
		{"STATE", det.State()},
		{"PEER", dash(peer)},
		{"CONNECTED", fmt.Sprintf("%s (%s ago)", det.ConnectedAt.UTC().Format(time.RFC3339), adminapi.Compact(det.Time.Sub(det.ConnectedAt)))},
		{"ADDRESS", det.Address},
		{"TRANSPORT", det.Transport},
		{"CLIENT", fmt.Sprintf("%s/%d", det.Generation, det.EngineIO)},
		{"TOKEN", det.TokenSummary(det.Time)},
		{"SENT", fmt.Sprintf("%d messages, %s", det.MessagesIn, adminapi.Bytes(det.BytesIn))},
		{"RECEIVED", fmt.Sprintf("%d messages, %s", det.MessagesOut, adminapi.Bytes(det.BytesOut))},
		{"ACKS", fmt.Sprintf("owes %d, awaits %d", det.AcksOwed, det.AcksAwaited)},
		{"HELD", fmt.Sprintf("%d messages held for it while away", det.Held)},
		{"REFUSALS", det.RefusalSummary()},
		{"WATCHED", watched},
	}
	if det.Node != "" {
		rows = slices.Insert(rows, 5, [2]string{"NODE", det.Node}) // after ADDRESS
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\n", r[0], r[1])
	}
	return tw.Flush()
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

// NodesCmd lists the nodes of a cluster.
type NodesCmd struct {
	JSON bool `help:"Print a JSON array of node objects (lease_age in nanoseconds); [] for a relay alone."`
}

// alone is what p2pctl nodes says of a relay that is no cluster.
const alone = "this relay runs alone (p2pd without --redis): it has no cluster nodes to list"

// Run prints the nodes, the one serving the admin side marked "(serving)".
func (c *NodesCmd) Run(ctx context.Context, g *Globals, out io.Writer) error {
	snap, err := state(ctx, g)
	if err != nil {
		return err
	}
	nodes := snap.Nodes
	if nodes == nil {
		nodes = []adminapi.Node{}
	}
	if c.JSON {
		return printJSON(out, nodes)
	}
	if !snap.Clustered() {
		_, err := fmt.Fprintln(out, alone)
		return err
	}
	return table(out, "NODE\tADDRESS\tDEVICES\tMSG/S\tMESSAGES\tLEASE AGE\tUP", len(nodes), func(i int) string {
		n := nodes[i]
		id := n.ID
		if n.Self {
			id += " (serving)"
		}
		return fmt.Sprintf("%s\t%s\t%d\t%.1f\t%d\t%.1fs\t%s", id, n.Address, n.Devices, n.MessagesPerSec, n.Messages,
			n.LeaseAge.Seconds(), adminapi.Compact(snap.Time.Sub(n.Started)))
	})
}

// WatchCmd streams events.
type WatchCmd struct {
	JSON   bool   `help:"Print each event as a JSON object."`
	Count  int    `help:"Exit after this many events (0: run until interrupted)." default:"0"`
	Stats  bool   `help:"Also print the counters the relay sends once a second."`
	Device string `help:"Print this device's traffic instead (event names and sizes, acks with their round trip, refusals; never payloads), and its own events." placeholder:"ID"`
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
	w := watcher{out: out, errOut: g.Stderr, asJSON: c.JSON, stats: c.Stats, count: c.Count, device: c.Device}
	if c.Device != "" {
		// A device that is not there is a mistake to say at once; once
		// watched, it is followed when it goes and comes back.
		if _, err := cl.Device(ctx, c.Device); err != nil {
			return err
		}
	}
	sub := cl.Subscribe(ctx)
	defer sub.Close()
	if c.Device != "" {
		if err := sub.Watch(ctx, c.Device); err != nil {
			return err
		}
	}
	return w.run(sub.Updates())
}

// watcher prints a stream: nothing for the first snapshot, a resync line
// for later ones, one line per delta; watching a device, only the deltas
// that name it, and its traffic. Before the first snapshot, a refused
// token or an unreachable relay ends it with that error; later drops are
// reported on errOut and retried.
type watcher struct {
	out, errOut   io.Writer
	asJSON, stats bool
	count         int    // lines to print before returning; 0 for no end
	device        string // the device watched, "" for all events
}

// trafficLine is a traffic line in JSON, told from the deltas by its kind.
type trafficLine struct {
	Kind string `json:"kind"` // "traffic"
	adminapi.Traffic
}

func (w watcher) run(updates <-chan adminapi.Update) error {
	out, errOut, asJSON, stats, count := w.out, w.errOut, w.asJSON, w.stats, w.count
	synced, printed := false, 0
	var dropped uint64
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
		var lines []func() error
		for _, d := range u.Deltas {
			if d.Kind == adminapi.KindStats && !stats {
				continue
			}
			if w.device != "" && d.ID != w.device && d.Peer != w.device {
				continue
			}
			lines = append(lines, func() error {
				if asJSON {
					return enc.Encode(d)
				}
				_, err := fmt.Fprintf(out, "%s #%d %s %s\n", d.Time.UTC().Format(time.RFC3339Nano), d.Seq, d.Kind, d.Summary())
				return err
			})
		}
		if u.Traffic != nil {
			if u.Traffic.Lost > 0 {
				fmt.Fprintf(errOut, "p2pctl: %d of %s's events lost on the way (p2pctl reads too slowly)\n", u.Traffic.Lost, w.device)
			}
			for _, t := range u.Traffic.Traffic {
				lines = append(lines, func() error {
					if asJSON {
						return enc.Encode(trafficLine{Kind: "traffic", Traffic: t})
					}
					_, err := fmt.Fprintf(out, "%s %s %s\n", t.Time.UTC().Format(time.RFC3339Nano), t.ID, t.Summary())
					return err
				})
			}
		}
		if d := u.Detail; d != nil && d.Dropped > dropped {
			fmt.Fprintf(errOut, "p2pctl: %d of %s's events left out, over the relay's bound on events a second\n", d.Dropped-dropped, d.ID)
			dropped = d.Dropped
		}
		for _, line := range lines {
			if err := line(); err != nil {
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
