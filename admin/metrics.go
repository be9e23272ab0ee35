package admin

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/p2prelay/p2prelay/protocol"
)

// pairingCodes are the refusal codes a pairing request ends with; each is
// exported even at zero so that the series exist from the start.
var pairingCodes = []protocol.Code{
	protocol.CodeOffline, protocol.CodeSelf, protocol.CodeBusy, protocol.CodeRefused, protocol.CodeTimeout,
}

// collector exports the relay's counters, read when Prometheus scrapes.
type collector struct {
	h *Hub

	devices, pairs, connects, disconnects *prometheus.Desc
	messages, acks, refusals, outcomes    *prometheus.Desc
	subscribers, resyncs, authFailures    *prometheus.Desc
	authThrottled, watched                *prometheus.Desc
}

// newRegistry returns the registry /metrics serves, and the registerer
// that adds to it: on a node of a cluster, every metric, the Go runtime's,
// the process's and the handler's own included, carries the node's id as
// the constant label node.
func newRegistry(h *Hub) (*prometheus.Registry, prometheus.Registerer) {
	reg := prometheus.NewRegistry()
	var r prometheus.Registerer = reg
	if h.cfg.Node != "" {
		r = prometheus.WrapRegistererWith(prometheus.Labels{"node": h.cfg.Node}, reg)
	}
	r.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newCollector(h),
	)
	return reg, r
}

func newCollector(h *Hub) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("p2pd_"+name, help, labels, nil)
	}
	return &collector{
		h:            h,
		devices:      d("devices", "Devices connected now."),
		pairs:        d("pairs", "Live pairs now."),
		connects:     d("device_connects_total", "Devices accepted since the relay started."),
		disconnects:  d("device_disconnects_total", "Device sessions ended since the relay started."),
		messages:     d("relayed_messages_total", "Events relayed between peers."),
		acks:         d("relayed_acks_total", "Acknowledgements piped back to the sender."),
		refusals:     d("refusals_total", "Refused requests and connections, by error code.", "code"),
		outcomes:     d("pairing_outcomes_total", "Settled pairing requests: paired, or the refusal's code.", "outcome"),
		subscribers:  d("admin_subscribers", "Admin stream subscribers now, from their first snapshot on."),
		resyncs:      d("admin_resyncs_total", "Times an admin subscriber fell behind and was resynced."),
		authFailures: d("admin_auth_failures_total", "Admin requests refused for a missing or wrong token.", "surface"),
		authThrottled: d("admin_auth_throttled_total",
			"Admin requests refused unchecked: their address had presented too many wrong tokens.", "surface"),
		watched: d("admin_watched_devices", "Devices whose traffic an operator is watching now."),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.devices, c.pairs, c.connects, c.disconnects, c.messages,
		c.acks, c.refusals, c.outcomes, c.subscribers, c.resyncs, c.authFailures, c.authThrottled, c.watched} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	h := c.h
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(c.subscribers, float64(h.nsubs.Load()))
	counter(c.resyncs, h.resyncs.Load())
	for i, name := range surfaceNames {
		counter(c.authFailures, h.authFailures[i].Load(), name)
		counter(c.authThrottled, h.authThrottled[i].Load(), name)
	}
	gauge(c.watched, float64(h.nwatches.Load()))
	src := h.source()
	if src == nil {
		return
	}
	st := src.Stats()
	gauge(c.devices, float64(st.Devices))
	gauge(c.pairs, float64(st.Pairs))
	counter(c.connects, st.Connects)
	counter(c.disconnects, st.Disconnects)
	counter(c.messages, st.Messages)
	counter(c.acks, st.Acks)
	for _, code := range protocol.Codes {
		counter(c.refusals, st.Refusals[code], string(code))
	}
	counter(c.outcomes, st.Paired, "paired")
	done := make(map[protocol.Code]bool, len(pairingCodes))
	for _, code := range pairingCodes {
		counter(c.outcomes, st.PairFailed[code], string(code))
		done[code] = true
	}
	for code, n := range st.PairFailed {
		if !done[code] {
			counter(c.outcomes, n, string(code))
		}
	}
}
