package tui

import (
	"cmp"
	"slices"
	"strings"

	"github.com/p2prelay/p2prelay/admin/adminapi"
)

// sortOrder is how the device lists are sorted.
type sortOrder int

// The orders, in the order the sort key goes through them.
const (
	byID       sortOrder = iota
	byUptime             // connected longest first
	byRate               // most messages a second first
	byRefusals           // most refused first
	sortOrders
)

// String names the order in a pane's title: "by rate".
func (o sortOrder) String() string {
	switch o {
	case byUptime:
		return "uptime"
	case byRate:
		return "rate"
	case byRefusals:
		return "refusals"
	}
	return "id"
}

// next is the order after o.
func (o sortOrder) next() sortOrder { return (o + 1) % sortOrders }

// followsCounters reports whether the order changes with the counters the
// stats bring once a second (not only with devices coming and going).
func (o sortOrder) followsCounters() bool { return o == byRate || o == byRefusals }

// deviceRows returns the ids of the devices that pass filter (lower case,
// "" for all), in order, and how many devices are available, filter or
// not. Ties go by id.
func deviceRows(st *adminapi.State, filter string, order sortOrder) ([]string, int) {
	if st == nil {
		return nil, 0
	}
	type row struct {
		id  string
		key int64 // larger first
	}
	rows := make([]row, 0, len(st.Devices))
	available := 0
	for id, d := range st.Devices {
		if d.Available {
			available++
		}
		if filter != "" && !strings.Contains(strings.ToLower(id), filter) {
			continue
		}
		r := row{id: id}
		switch order {
		case byUptime:
			r.key = -d.ConnectedAt.UnixNano()
		case byRate:
			r.key = int64(st.DeviceRates[id] * 1000)
		case byRefusals:
			r.key = int64(d.Refusals)
		}
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(a, b row) int {
		if c := cmp.Compare(b.key, a.key); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i] = r.id
	}
	return ids, available
}
