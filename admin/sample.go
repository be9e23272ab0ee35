package admin

import (
	"time"
)

// sampler is what the previous stats sample saw, for the next to say what
// changed.
type sampler struct {
	pairs   map[string]pairSample   // by the pair's A
	devices map[string]deviceSample // by id
	// devicesAt is when the devices were last read, gen counts the reads.
	devicesAt time.Time
	gen       uint64
	// refusalTotal is the relay's refusal count when the devices'
	// refusals were last read: they are read again only when it moved.
	refusalTotal uint64
}

// deviceSample is a device's counters at a stats sample.
type deviceSample struct {
	since    time.Time // when it connected: a later connection counts afresh
	messages uint64
	refusals uint64
	gen      uint64 // the read that last saw it
}

// devicesPerSecond paces the reads of every device's counters: the relay's
// list of devices is read at most once a second per devicesPerSecond
// devices (10,000 devices: every 5 s), as reading it costs the relay about
// 2 µs a device.
const devicesPerSecond = 2000

// deviceSampleDue reports whether the devices' counters are due to be read
// again at now, given how many there are.
func (smp *sampler) deviceSampleDue(now time.Time, devices int) bool {
	every := time.Duration(max(1, (devices+devicesPerSecond-1)/devicesPerSecond)) * time.Second
	return smp.devices == nil || now.Sub(smp.devicesAt) >= every-every/10
}

// sampleDevices returns the message counts of the devices whose count
// changed since the last read, the rates of those that were already
// connected then, and the refusal counts that changed; it records the
// current counts in smp, and the refusal counts in h.refusals for the
// snapshots.
//
// The relay reports each device's message count in its list, but its
// refusals only in its detail: the devices' details are read only when
// the relay's refusal count (refusalTotal) moved since they were last.
func (h *Hub) sampleDevices(src Source, smp *sampler, refusalTotal uint64, now time.Time) (map[string]uint64, map[string]float64, map[string]uint64) {
	seconds := now.Sub(smp.devicesAt).Seconds()
	if smp.devices == nil {
		smp.devices = make(map[string]deviceSample)
		smp.refusalTotal, seconds = 0, 0
	}
	smp.devicesAt = now
	smp.gen++
	devs := src.Devices()
	readRefusals := refusalTotal != smp.refusalTotal
	smp.refusalTotal = refusalTotal
	changed := readRefusals
	var counts, refusals map[string]uint64
	var rates map[string]float64
	for _, d := range devs {
		prev, ok := smp.devices[d.ID]
		if ok && !prev.since.Equal(d.ConnectedAt) {
			prev, ok = deviceSample{}, false
		}
		cur := deviceSample{since: d.ConnectedAt, messages: d.Messages, refusals: prev.refusals, gen: smp.gen}
		if readRefusals {
			if det, found := src.Detail(d.ID); found {
				cur.refusals = 0
				for _, n := range det.Refusals {
					cur.refusals += n
				}
			}
		}
		if cur.messages != prev.messages {
			if counts == nil {
				counts = make(map[string]uint64)
			}
			counts[d.ID] = cur.messages
			if ok && seconds > 0 && cur.messages > prev.messages {
				if rates == nil {
					rates = make(map[string]float64)
				}
				rates[d.ID] = rate(prev.messages, cur.messages, seconds)
			}
		}
		if cur.refusals != prev.refusals {
			if refusals == nil {
				refusals = make(map[string]uint64)
			}
			refusals[d.ID] = cur.refusals
		}
		smp.devices[d.ID] = cur
	}
	for id, s := range smp.devices {
		if s.gen != smp.gen {
			changed = changed || s.refusals > 0
			delete(smp.devices, id)
		}
	}
	if changed {
		all := make(map[string]uint64)
		for id, s := range smp.devices {
			if s.refusals > 0 {
				all[id] = s.refusals
			}
		}
		h.refusals.Store(&all)
	}
	return counts, rates, refusals
}

// forgetDevices drops the devices' samples while nobody subscribes: the
// next subscriber's first sample reads them all again.
func (h *Hub) forgetDevices(smp *sampler) {
	smp.devices = nil
	h.refusals.Store(nil)
}
