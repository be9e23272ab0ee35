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

// deviceRows returns every device's id in order, the ids of those that
// pass filter (lower case, "" for all), the available ones among those,
// and how many devices are available, filter or not. Ties go by id.
//
// It keeps the devices sorted by id from one call to the next, and sorts
// them again only when devices came or went: every order starts from it.
// By rate or refusals, only the devices with some are sorted (the rest
// follow by id); by uptime, the devices are taken in the last order
// (prev), which sorting again finds nearly in place.
func (s *deviceSorter) deviceRows(st *adminapi.State, filter string, order sortOrder, prev []string) (all, shown, shownAvailable []string, available int) {
	if st == nil {
		return nil, nil, nil, 0
	}
	keyOf := func(id string, d *adminapi.Device) int64 {
		switch order {
		case byUptime:
			return -d.ConnectedAt.UnixNano()
		case byRate:
			return int64(st.DeviceRates[id] * 1000)
		case byRefusals:
			return int64(d.Refusals)
		}
		return 0
	}
	byKey := func(a, b sortRow) int {
		if c := cmp.Compare(b.key, a.key); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	}
	base := s.byID
	if order == byUptime {
		base = prev
	}
	rows := s.rows[:0]
	defer func() { s.rows = rows[:0] }()
	for _, id := range base {
		if d, ok := st.Devices[id]; ok {
			rows = append(rows, sortRow{id, keyOf(id, d), d})
		}
	}
	if len(rows) != len(st.Devices) || len(s.byID) != len(st.Devices) { // devices came or went
		rows = rows[:0]
		for id, d := range st.Devices {
			rows = append(rows, sortRow{id, 0, d})
		}
		slices.SortFunc(rows, byKey)
		s.byID = make([]string, len(rows))
		for i := range rows {
			s.byID[i] = rows[i].id
			rows[i].key = keyOf(rows[i].id, rows[i].dev)
		}
	}
	switch order {
	case byUptime:
		slices.SortFunc(rows, byKey)
	case byRate, byRefusals:
		// The devices with a key first, sorted; then the rest, still by id.
		hot, cold := s.hot[:0], 0
		for _, r := range rows {
			if r.key != 0 {
				hot = append(hot, r)
			} else {
				rows[cold] = r
				cold++
			}
		}
		slices.SortFunc(hot, byKey)
		copy(rows[len(hot):], rows[:cold])
		copy(rows, hot)
		s.hot = hot[:0]
	}
	all = make([]string, len(rows))
	shown = all
	if filter != "" {
		shown = nil
	}
	shownAvailable = make([]string, 0, s.available)
	for i, r := range rows {
		all[i] = r.id
		if r.dev.Available {
			available++
		}
		if filter != "" {
			if !strings.Contains(strings.ToLower(r.id), filter) {
				continue
			}
			shown = append(shown, r.id)
		}
		if r.dev.Available {
			shownAvailable = append(shownAvailable, r.id)
		}
	}
	s.available = len(shownAvailable)
	return all, shown, shownAvailable, available
}

// deviceSorter sorts the device lists, keeping the devices sorted by id and
// its scratch space from one sort to the next.
type deviceSorter struct {
	byID      []string  // every device, by id, as of the last call
	rows, hot []sortRow // scratch
	available int       // the available devices shown last time: room to make
}

// sortRow is a device in the order being sorted.
type sortRow struct {
	id  string
	key int64 // larger first
	dev *adminapi.Device
}
