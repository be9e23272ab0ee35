package tui

import (
	"fmt"
	"time"

	"github.com/p2prelay/p2prelay/admin/adminapi"
)

// Common is what every component of the dashboard holds: its own size, and
// what they all share: the styles, the keys, and the data they draw from.
// The root model owns the shared parts; components read them.
type Common struct {
	Width, Height int
	Styles        *Styles
	Keys          *KeyMap
	data          *data
}

// SetSize sets the component's outer size.
func (c *Common) SetSize(width, height int) {
	c.Width, c.Height = width, height
}

// component is a part of the screen: it draws itself at the size it was
// last given.
type component interface {
	SetSize(width, height int)
	View() string
}

// data is what the components draw from.
type data struct {
	state     *adminapi.State // nil until the first snapshot
	live      bool            // the stream is live: the rates are current
	now       time.Time       // the clock at the last redraw
	filter    string          // lower-case id filter, "" for none
	order     sortOrder       // how the device lists are sorted
	sorter    deviceSorter
	sorted    []string // every device's id, in order
	devices   []string // the ids that pass the filter, in order
	availIDs  []string // the available ones among those
	available int      // devices with no peer and no pairing under way, filter or not
}

// rate formats a rate for a pane or the header: "—" while the stream is
// not live, as the last rates are not current then.
func (d *data) rate(perSec float64) string {
	if !d.live {
		return "—"
	}
	return fmt.Sprintf("%.1f", perSec)
}

// pairOf returns the pair device id is in (either side), when ok says
// there is an id: pass it a pane's selection.
func (d *data) pairOf(id string, ok bool) (*adminapi.Pair, bool) {
	if !ok || d.state == nil {
		return nil, false
	}
	return d.state.PairOf(id)
}
