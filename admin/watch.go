package admin

import (
	"slices"
	"sync"
	"sync/atomic"

	"github.com/p2prelay/p2prelay/admin/adminapi"
	"github.com/p2prelay/p2prelay/protocol"
	"github.com/p2prelay/p2prelay/server"
)

// Watching a device: an operator's subscriber asks for one device's detail
// and traffic (adminapi.CommandWatch). The hub holds one relay watch
// (server.Relay.Watch) per watched device, whatever the number of
// subscribers watching it, and fans its traffic out to them; the relay
// watch stops when the last of them unwatches or leaves.
//
// The relay calls a watch's function on its own goroutines, so that
// function only copies the traffic into each watcher's bounded buffer,
// never waiting: what a full buffer cannot hold is counted as lost. Once a
// second (and at once when a watched device comes or goes) the hub's
// ticker reads each watched device's detail, hands it to its watchers, and
// attaches the relay watch again to a device that reconnected (a new
// connection is a new device to the relay).

// subscriberWatches is what a subscriber watches, and what is waiting to
// be sent to it for that.
type subscriberWatches struct {
	traffic chan adminapi.Traffic // filled on the relay's goroutines, never blocking them
	lost    atomic.Uint64         // traffic that did not fit in traffic

	mu       sync.Mutex // guards ids and details
	ids      map[string]struct{}
	details  map[string]*adminapi.DeviceDetail // the latest of each device, not yet sent
	detailed chan struct{}                     // signalled when details gets one
}

func newSubscriberWatches(buffer int) subscriberWatches {
	return subscriberWatches{traffic: make(chan adminapi.Traffic, buffer), detailed: make(chan struct{}, 1)}
}

// push hands one traffic to the subscriber, or counts it lost.
func (w *subscriberWatches) push(t adminapi.Traffic) {
	select {
	case w.traffic <- t:
	default:
		w.lost.Add(1)
	}
}

// setDetail keeps det for the subscriber, if it still watches the device.
func (w *subscriberWatches) setDetail(det *adminapi.DeviceDetail) {
	w.mu.Lock()
	_, ok := w.ids[det.ID]
	if ok {
		if w.details == nil {
			w.details = make(map[string]*adminapi.DeviceDetail)
		}
		w.details[det.ID] = det
	}
	w.mu.Unlock()
	if ok {
		select {
		case w.detailed <- struct{}{}:
		default:
		}
	}
}

// takeDetails returns the details waiting to be sent, sorted by id.
func (w *subscriberWatches) takeDetails() []*adminapi.DeviceDetail {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]*adminapi.DeviceDetail, 0, len(w.details))
	for _, d := range w.details {
		out = append(out, d)
	}
	clear(w.details)
	slices.SortFunc(out, func(a, b *adminapi.DeviceDetail) int {
		if a.ID < b.ID {
			return -1
		}
		if a.ID > b.ID {
			return 1
		}
		return 0
	})
	return out
}

// takeTraffic returns up to n traffic waiting, of the devices still
// watched, with how much was lost since the last call; nil when there is
// nothing to send.
func (w *subscriberWatches) takeTraffic(first adminapi.Traffic, n int) *adminapi.TrafficBatch {
	ts := []adminapi.Traffic{first}
fill:
	for len(ts) < n {
		select {
		case t := <-w.traffic:
			ts = append(ts, t)
		default:
			break fill
		}
	}
	w.mu.Lock()
	kept := ts[:0]
	for _, t := range ts {
		if _, ok := w.ids[t.ID]; ok {
			kept = append(kept, t)
		}
	}
	w.mu.Unlock()
	lost := w.lost.Swap(0)
	if len(kept) == 0 && lost == 0 {
		return nil
	}
	return &adminapi.TrafficBatch{Traffic: kept, Lost: lost}
}

// deviceWatch is the hub's watch of one device on the relay.
type deviceWatch struct {
	id   string
	subs atomic.Pointer[[]*subscriber] // read on the relay's goroutines; replaced under Hub.watchMu
	stop func()                        // ends the relay watch; nil while none is attached. Guarded by Hub.watchMu.
}

// tap is the relay watch's function: it copies t to every watcher.
func (w *deviceWatch) tap(t server.Traffic) {
	subs := w.subs.Load()
	if subs == nil {
		return
	}
	at := trafficOf(t)
	for _, sub := range *subs {
		sub.watches.push(at)
	}
}

// watch makes sub watch device id. It fails for a bad id or when sub
// watches MaxWatches devices already; a device that is not connected is
// watched all the same, from when it connects.
func (h *Hub) watch(sub *subscriber, id string) error {
	if err := protocol.ValidateID(id); err != nil {
		return err
	}
	w := &sub.watches
	w.mu.Lock()
	if _, ok := w.ids[id]; ok {
		w.mu.Unlock()
		h.wakeWatches() // sends the detail again
		return nil
	}
	if len(w.ids) >= adminapi.MaxWatches {
		w.mu.Unlock()
		return protocol.Errorf(protocol.CodeRateLimited, "this connection watches %d devices already, the most it may", adminapi.MaxWatches)
	}
	if w.ids == nil {
		w.ids = make(map[string]struct{})
	}
	w.ids[id] = struct{}{}
	w.mu.Unlock()

	h.watchMu.Lock()
	dw, ok := h.watches[id]
	if !ok {
		dw = &deviceWatch{id: id}
		h.watches[id] = dw
		h.nwatches.Add(1)
	}
	var subs []*subscriber
	if p := dw.subs.Load(); p != nil {
		subs = slices.Clone(*p)
	}
	subs = append(subs, sub)
	dw.subs.Store(&subs)
	h.watchMu.Unlock()
	h.wakeWatches()
	return nil
}

// unwatch stops sub's watch of device id; the relay watch stops with the
// last watcher.
func (h *Hub) unwatch(sub *subscriber, id string) {
	w := &sub.watches
	w.mu.Lock()
	_, ok := w.ids[id]
	delete(w.ids, id)
	delete(w.details, id)
	w.mu.Unlock()
	if !ok {
		return
	}
	h.watchMu.Lock()
	defer h.watchMu.Unlock()
	dw, ok := h.watches[id]
	if !ok {
		return
	}
	subs := slices.DeleteFunc(slices.Clone(*dw.subs.Load()), func(s *subscriber) bool { return s == sub })
	if len(subs) > 0 {
		dw.subs.Store(&subs)
		return
	}
	dw.subs.Store(nil)
	if dw.stop != nil {
		dw.stop() // only swaps the relay's watch pointer: safe under the lock
		dw.stop = nil
	}
	delete(h.watches, id)
	h.nwatches.Add(-1)
}

// unwatchAll stops every watch of sub, when it leaves.
func (h *Hub) unwatchAll(sub *subscriber) {
	sub.watches.mu.Lock()
	ids := make([]string, 0, len(sub.watches.ids))
	for id := range sub.watches.ids {
		ids = append(ids, id)
	}
	sub.watches.mu.Unlock()
	for _, id := range ids {
		h.unwatch(sub, id)
	}
}

// Watched returns the ids of the devices watched now, sorted.
func (h *Hub) Watched() []string {
	h.watchMu.Lock()
	defer h.watchMu.Unlock()
	ids := make([]string, 0, len(h.watches))
	for id, dw := range h.watches {
		if dw.stop != nil {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// wakeWatches makes the ticker refresh the watches now.
func (h *Hub) wakeWatches() {
	select {
	case h.watchWake <- struct{}{}:
	default:
	}
}

// noticeWatched wakes the watches when e concerns a watched device's
// connection. It runs in OnEvent: it takes only the hub's own lock.
func (h *Hub) noticeWatched(e server.Event) {
	if h.nwatches.Load() == 0 {
		return
	}
	switch e.Kind {
	case server.DeviceConnected, server.DeviceDisconnected, server.DeviceResumed:
	default:
		return
	}
	h.watchMu.Lock()
	_, ok := h.watches[e.ID]
	h.watchMu.Unlock()
	if ok {
		h.wakeWatches()
	}
}

// refreshWatches reads every watched device's detail and hands it to its
// watchers, attaching the relay watch where there is none (a device that
// connected, or connected again). It runs on the ticker's goroutine only.
func (h *Hub) refreshWatches(src Source) {
	h.watchMu.Lock()
	dws := make([]*deviceWatch, 0, len(h.watches))
	for _, dw := range h.watches {
		dws = append(dws, dw)
	}
	h.watchMu.Unlock()
	for _, dw := range dws {
		det, ok := h.detail(src, dw.id)
		if ok && (!det.Watched || !h.attached(dw)) {
			h.attach(src, dw)
			det, _ = h.detail(src, dw.id)
		}
		if !ok {
			h.detach(dw)
		}
		if subs := dw.subs.Load(); subs != nil {
			for _, sub := range *subs {
				sub.watches.setDetail(&det)
			}
		}
	}
}

// attach starts the relay watch of dw's device, unless dw was dropped
// meanwhile.
func (h *Hub) attach(src Source, dw *deviceWatch) {
	stop, err := src.Watch(dw.id, h.cfg.WatchRate, dw.tap)
	if err != nil {
		return // gone again: the next refresh says so
	}
	h.watchMu.Lock()
	defer h.watchMu.Unlock()
	if h.watches[dw.id] != dw {
		stop()
		return
	}
	if dw.stop != nil {
		dw.stop() // a watch of the device's previous connection
	}
	dw.stop = stop
}

// attached reports whether dw has a relay watch.
func (h *Hub) attached(dw *deviceWatch) bool {
	h.watchMu.Lock()
	defer h.watchMu.Unlock()
	return dw.stop != nil
}

// detach forgets the relay watch of a device that left.
func (h *Hub) detach(dw *deviceWatch) {
	h.watchMu.Lock()
	defer h.watchMu.Unlock()
	if dw.stop != nil {
		dw.stop()
		dw.stop = nil
	}
}

// detail reads device id's detail; ok is false, and the detail says
// Offline, when the device is not on the relay.
func (h *Hub) detail(src Source, id string) (adminapi.DeviceDetail, bool) {
	now := h.cfg.Now()
	det, ok := src.Detail(id)
	if !ok {
		return adminapi.DeviceDetail{Device: adminapi.Device{ID: id}, Time: now, Offline: true}, false
	}
	return detailOf(det, now, h.cfg.Node != ""), true
}

// Detail returns what the relay knows of device id: OFFLINE when it is not
// connected, BAD_ID for an invalid id.
func (h *Hub) Detail(id string) (adminapi.DeviceDetail, error) {
	if err := protocol.ValidateID(id); err != nil {
		return adminapi.DeviceDetail{}, err
	}
	src := h.source()
	if src == nil {
		return adminapi.DeviceDetail{}, protocol.Errorf(protocol.CodeShuttingDown, "the relay is not running")
	}
	det, ok := h.detail(src, id)
	if !ok {
		return det, protocol.Errorf(protocol.CodeOffline, "device %q is not connected", id)
	}
	return det, nil
}
