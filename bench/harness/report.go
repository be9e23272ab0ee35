package harness

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/p2prelay/p2prelay/bench/loadgen"
)

// Axis is one figure compared between the two relays.
type Axis struct {
	Scenario string `json:"scenario"`
	Metric   string `json:"metric"`
	Label    string `json:"label"`
	Unit     string `json:"unit"`
	// Higher is true when more is better.
	Higher bool `json:"higher_is_better"`
	// Target bounds the ratio p2pd/node: at least Target when Higher, at
	// most Target otherwise. Zero: the axis is context, with no target.
	Target float64 `json:"target,omitempty"`
	// Issue marks the targets the performance issues name; the others
	// follow from "p2pd must beat it on every axis".
	Issue bool `json:"issue,omitempty"`
	// Says is what the first relay does in the report's plain sentence,
	// %s standing for the ratio: "uses %s node's CPU per message" (node
	// being the second relay's name). Only axes with a target have one.
	Says string `json:"-"`
}

// Axes are the compared figures, targets first; the fleet's lead, as they
// are what users meet.
var Axes = []Axis{
	{loadgen.ScenarioFleet, loadgen.MetricCPUPerMsg, "fleet: server CPU per relayed message", "µs", false, 0.7, true, "uses %s %s's CPU per relayed message"},
	{loadgen.ScenarioFleet, loadgen.MetricP99, "fleet: ack round trip p99", "µs", false, 1.0, true, "takes %s %s's time to complete an ack at p99"},
	{loadgen.ScenarioFleet, loadgen.MetricRSS, "fleet: server RSS", "MiB", false, 1.0, true, "uses %s %s's memory"},
	{loadgen.ScenarioAck, loadgen.MetricRate, "ack throughput", "acks/s", true, 1.25, true, "relays %s %s's acks per second"},
	{loadgen.ScenarioAck, loadgen.MetricCPUPerMsg, "server CPU per relayed message, acks", "µs", false, 0.8, true, "uses %s %s's CPU per relayed ack"},
	{loadgen.ScenarioEmit, loadgen.MetricCPUPerMsg, "server CPU per relayed message, emits", "µs", false, 0.8, true, "uses %s %s's CPU per relayed emit"},
	{loadgen.ScenarioLatency, loadgen.MetricP99, "ack round trip p99", "µs", false, 1.0, true, "takes %s %s's time for a sequential ack round trip at p99"},
	{loadgen.ScenarioDevices, loadgen.MetricMemPerDevice, "memory per idle paired device", "KiB", false, 1.0, true, "uses %s %s's memory per idle paired device"},
	{loadgen.ScenarioDevices, loadgen.MetricPair, "time to pair the devices", "s", false, 1.0, true, "pairs the devices in %s %s's time"},
	{loadgen.ScenarioFleet, loadgen.MetricP50, "fleet: ack round trip p50", "µs", false, 1.0, false, "takes %s %s's time to complete an ack at p50"},
	{loadgen.ScenarioFleet10x, loadgen.MetricCPUPerMsg, "fleet at 10x: server CPU per relayed message", "µs", false, 1.0, false, "uses %s %s's CPU per relayed message at ten times the rate"},
	{loadgen.ScenarioFleet10x, loadgen.MetricP99, "fleet at 10x: ack round trip p99", "µs", false, 1.0, false, "takes %s %s's time to complete an ack at p99, at ten times the rate"},
	{loadgen.ScenarioFleet10x, loadgen.MetricRSS, "fleet at 10x: server RSS", "MiB", false, 1.0, false, "uses %s %s's memory at ten times the rate"},
	{loadgen.ScenarioFleet10x, loadgen.MetricRate, "fleet at 10x: acks completed", "/s", true, 1.0, false, "completes %s %s's acks per second at ten times the rate"},
	{loadgen.ScenarioEmit, loadgen.MetricRate, "delivered throughput, emits", "msg/s", true, 1.0, false, "delivers %s %s's emits per second"},
	{loadgen.ScenarioLatency, loadgen.MetricP50, "ack round trip p50", "µs", false, 1.0, false, "takes %s %s's time for a sequential ack round trip at p50"},

	{loadgen.ScenarioFleet, loadgen.MetricP999, "fleet: ack round trip p99.9", "µs", false, 0, false, ""},
	{loadgen.ScenarioFleet, loadgen.MetricRate, "fleet: acks completed", "/s", true, 0, false, ""},
	{loadgen.ScenarioFleet, loadgen.MetricServerCPU, "fleet: server CPU", "% core", false, 0, false, ""},
	{loadgen.ScenarioFleet, loadgen.MetricGenCPU, "fleet: generator CPU", "% core", false, 0, false, ""},
	{loadgen.ScenarioFleet, loadgen.MetricLagP99, "fleet: generator lag p99", "µs", false, 0, false, ""},
	{loadgen.ScenarioFleet, loadgen.MetricSyscallsPerMsg, "fleet: server reads and writes per message", "syscalls", false, 0, false, ""},
	{loadgen.ScenarioFleet, loadgen.MetricSwitchesPerMsg, "fleet: server context switches per message", "switches", false, 0, false, ""},
	{loadgen.ScenarioFleet10x, loadgen.MetricP50, "fleet at 10x: ack round trip p50", "µs", false, 0, false, ""},
	{loadgen.ScenarioFleet10x, loadgen.MetricP999, "fleet at 10x: ack round trip p99.9", "µs", false, 0, false, ""},
	{loadgen.ScenarioFleet10x, loadgen.MetricServerCPU, "fleet at 10x: server CPU", "% core", false, 0, false, ""},
	{loadgen.ScenarioFleet10x, loadgen.MetricGenCPU, "fleet at 10x: generator CPU", "% core", false, 0, false, ""},
	{loadgen.ScenarioFleet10x, loadgen.MetricLagP99, "fleet at 10x: generator lag p99", "µs", false, 0, false, ""},
	{loadgen.ScenarioFleet10x, loadgen.MetricSyscallsPerMsg, "fleet at 10x: server reads and writes per message", "syscalls", false, 0, false, ""},
	{loadgen.ScenarioFleet10x, loadgen.MetricSwitchesPerMsg, "fleet at 10x: server context switches per message", "switches", false, 0, false, ""},
	{loadgen.ScenarioLatency, loadgen.MetricP999, "ack round trip p99.9", "µs", false, 0, false, ""},
	{loadgen.ScenarioLatency, loadgen.MetricRate, "sequential round trips", "/s", true, 0, false, ""},
	{loadgen.ScenarioDevices, loadgen.MetricConnect, "time to connect the devices", "s", false, 0, false, ""},
	{loadgen.ScenarioDevices, loadgen.MetricIdleCPU, "server CPU, devices idle", "% core", false, 0, false, ""},
	{loadgen.ScenarioDevices, loadgen.MetricRSS, "server RSS, devices idle", "MiB", false, 0, false, ""},
	{loadgen.ScenarioLatency, loadgen.MetricServerCPU, "server CPU, latency", "% core", false, 0, false, ""},
	{loadgen.ScenarioLatency, loadgen.MetricGenCPU, "generator CPU, latency", "% core", false, 0, false, ""},
	{loadgen.ScenarioAck, loadgen.MetricServerCPU, "server CPU, acks", "% core", false, 0, false, ""},
	{loadgen.ScenarioAck, loadgen.MetricGenCPU, "generator CPU, acks", "% core", false, 0, false, ""},
	{loadgen.ScenarioEmit, loadgen.MetricServerCPU, "server CPU, emits", "% core", false, 0, false, ""},
	{loadgen.ScenarioEmit, loadgen.MetricGenCPU, "generator CPU, emits", "% core", false, 0, false, ""},
	{loadgen.ScenarioAck, loadgen.MetricRSS, "server RSS after acks", "MiB", false, 0, false, ""},
	{loadgen.ScenarioFleet, loadgen.MetricOtherCPU, "other processes' CPU, fleet", "% core", false, 0, false, ""},
	{loadgen.ScenarioFleet10x, loadgen.MetricOtherCPU, "other processes' CPU, fleet at 10x", "% core", false, 0, false, ""},
	{loadgen.ScenarioLatency, loadgen.MetricOtherCPU, "other processes' CPU, latency", "% core", false, 0, false, ""},
	{loadgen.ScenarioAck, loadgen.MetricOtherCPU, "other processes' CPU, acks", "% core", false, 0, false, ""},
	{loadgen.ScenarioEmit, loadgen.MetricOtherCPU, "other processes' CPU, emits", "% core", false, 0, false, ""},
	{loadgen.ScenarioDevices, loadgen.MetricOtherCPU, "other processes' CPU, devices", "% core", false, 0, false, ""},
	{loadgen.ScenarioEmit, loadgen.MetricSoftIRQ, "kernel interrupt CPU, emits", "% core", false, 0, false, ""},
}

// Verdict is one axis judged: the medians over the rounds, their ratio,
// and whether p2pd met the target.
type Verdict struct {
	Axis
	Median [2]float64   `json:"median"` // p2pd, node
	Rounds [2][]float64 `json:"rounds"` // every round's figure
	Ratio  float64      `json:"ratio"`  // p2pd / node
	Pass   bool         `json:"pass"`
}

// Missed reports a target the verdict has and did not meet.
func (v Verdict) Missed() bool { return v.Target != 0 && !v.Pass }

// Judge computes the verdicts of every axis some record measured.
func Judge(res *Results) []Verdict {
	var out []Verdict
	for _, ax := range Axes {
		v := Verdict{Axis: ax}
		for _, rec := range res.Records {
			if rec.Scenario != ax.Scenario {
				continue
			}
			val, ok := rec.Metrics[ax.Metric]
			if !ok {
				continue
			}
			i := slices.Index(res.Relays[:], rec.Relay)
			if i < 0 {
				continue
			}
			v.Rounds[i] = append(v.Rounds[i], val)
		}
		if len(v.Rounds[0]) == 0 || len(v.Rounds[1]) == 0 {
			continue
		}
		v.Median = [2]float64{Median(v.Rounds[0]), Median(v.Rounds[1])}
		if v.Median[1] != 0 {
			v.Ratio = v.Median[0] / v.Median[1]
		}
		switch {
		case ax.Target == 0:
		case ax.Higher:
			v.Pass = v.Ratio >= ax.Target
		default:
			v.Pass = v.Median[1] > 0 && v.Ratio <= ax.Target
		}
		out = append(out, v)
	}
	return out
}

// Median returns the median of vals (the mean of the middle two for an
// even count).
func Median(vals []float64) float64 {
	if len(vals) == 0 {
		return math.NaN()
	}
	s := slices.Clone(vals)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// spread is the range of vals relative to their median, in percent.
func spread(vals []float64) float64 {
	m := Median(vals)
	if len(vals) < 2 || m == 0 {
		return 0
	}
	return 100 * (slices.Max(vals) - slices.Min(vals)) / math.Abs(m)
}

// PrintReport prints the verdicts, in a table and in plain sentences,
// and the big run.
func PrintReport(w io.Writer, res *Results) {
	if len(res.Verdicts) > 0 {
		printVerdicts(w, res)
	}
	printBig(w, res)
	targets, missed := 0, 0
	for _, v := range res.Verdicts {
		if v.Target != 0 {
			targets++
		}
		if v.Missed() {
			missed++
		}
	}
	if targets > 0 {
		fmt.Fprintf(w, "\n%d of %d targets met; took %s\n", targets-missed, targets, seconds(res.Elapsed))
	} else {
		fmt.Fprintf(w, "\ntook %s\n", seconds(res.Elapsed))
	}
	all := append(slices.Clone(res.Records), res.Big...)
	disturbed, late := 0, 0
	for _, rec := range all {
		if rec.Metrics[loadgen.MetricOtherCPU] > BusyThreshold {
			disturbed++
		}
		if loadgen.GeneratorLate(rec.Metrics) {
			late++
		}
	}
	if disturbed > 0 {
		fmt.Fprintf(w, "WARNING: other processes used more than %d%% of a core during %d of %d measurements: "+
			"the figures are disturbed and the spreads wide; run again on an idle machine\n", BusyThreshold, disturbed, len(all))
	}
	if late > 0 {
		fmt.Fprintf(w, "WARNING: the generator fired its sends late (p99 lag over %s and over %.0f%% of the ack p99) in %d of %d measurements: "+
			"their figures may show the generator's delays rather than the relay's\n", loadgen.LagLimit, 100*loadgen.LagShare, late, len(all))
	}
	for _, rec := range all {
		if rec.Errors > 0 {
			fmt.Fprintf(w, "WARNING: %s, %s round %d: %d errors, first: %s\n", rec.Relay, rec.Scenario, rec.Round, rec.Errors, rec.FirstError)
		}
		for _, n := range rec.Notes {
			fmt.Fprintf(w, "note: %s, %s round %d: %s\n", rec.Relay, rec.Scenario, rec.Round, n)
		}
	}
}

// printVerdicts prints the table of verdicts, then who wins each axis
// with a target, scenario by scenario.
func printVerdicts(w io.Writer, res *Results) {
	fmt.Fprintf(w, "\nmedians of %d round(s); ratio = %s/%s; spread = (max-min)/median over the rounds\n\n",
		res.Rounds, res.Relays[0], res.Relays[1])
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "axis\t%s\t%s\tratio\ttarget\t\tspread %s\tspread %s\t\n", res.Relays[0], res.Relays[1], res.Relays[0], res.Relays[1])
	context := false
	for _, v := range res.Verdicts {
		if v.Target == 0 && !context {
			context = true
			fmt.Fprintf(tw, "context, no target:\t\t\t\t\t\t\t\t\n")
		}
		target, verdict := "", ""
		if v.Target != 0 {
			op := "<="
			if v.Higher {
				op = ">="
			}
			target = fmt.Sprintf("%s %.2fx", op, v.Target)
			verdict = "FAIL"
			if v.Pass {
				verdict = "PASS"
			}
			if !v.Issue {
				verdict += " (beat)"
			}
		}
		fmt.Fprintf(tw, "%s (%s)\t%s\t%s\t%.2fx\t%s\t%s\t%.0f%%\t%.0f%%\t\n", v.Label, v.Unit,
			Number(v.Median[0]), Number(v.Median[1]), v.Ratio, target, verdict, spread(v.Rounds[0]), spread(v.Rounds[1]))
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "\nwho wins, scenario by scenario (medians):\n")
	for _, v := range res.Verdicts {
		if v.Says != "" {
			fmt.Fprintf(w, "  %-9s %s\n", v.Scenario, Sentence(v, res.Relays))
		}
	}
}

// printBig prints the big run: each relay's figures, then who wins.
func printBig(w io.Writer, res *Results) {
	if len(res.Big) == 0 {
		return
	}
	fmt.Fprintln(w)
	for _, rec := range res.Big {
		m := rec.Metrics
		fmt.Fprintf(w, "%s with %s idle paired devices: connected in %s s, paired in %s s; RSS %s MiB (%s MiB before they connected; %s KiB per device); idle CPU %s%% of a core; %s\n",
			rec.Relay, Number(m[loadgen.MetricDevices]), Number(m[loadgen.MetricConnect]), Number(m[loadgen.MetricPair]),
			Number(m[loadgen.MetricRSS]), Number(m[loadgen.MetricRSSBase]), Number(m[loadgen.MetricMemPerDevice]),
			Number(m[loadgen.MetricIdleCPU]), verdictWord(rec))
	}
	if len(res.Big) != 2 {
		return
	}
	for _, ax := range Axes {
		if ax.Scenario != loadgen.ScenarioDevices || ax.Says == "" {
			continue
		}
		v := Verdict{Axis: ax, Median: [2]float64{res.Big[0].Metrics[ax.Metric], res.Big[1].Metrics[ax.Metric]}}
		if v.Median[1] != 0 {
			v.Ratio = v.Median[0] / v.Median[1]
		}
		fmt.Fprintf(w, "  big       %s\n", Sentence(v, [2]string{res.Big[0].Relay, res.Big[1].Relay}))
	}
}

func verdictWord(rec Record) string {
	if rec.Errors > 0 {
		return fmt.Sprintf("with %d errors", rec.Errors)
	}
	return "all connected and paired"
}

// Sentence says in plain words which of the two relays (names, in the
// order of the ratio) wins on v, and by how much: "p2pd uses 0.62x node's
// CPU per relayed message (8.10 µs against 13.0 µs): p2pd wins."
func Sentence(v Verdict, names [2]string) string {
	better := v.Ratio < 1
	if v.Higher {
		better = v.Ratio > 1
	}
	outcome := names[1] + " wins"
	switch {
	case v.Median[1] == 0 || math.IsNaN(v.Ratio):
		outcome = "no ratio"
	case math.Abs(v.Ratio-1) < 0.005:
		outcome = "even"
	case better:
		outcome = names[0] + " wins"
	}
	unit := " " + v.Unit
	if strings.HasPrefix(v.Unit, "%") || strings.HasPrefix(v.Unit, "/") {
		unit = v.Unit
	}
	return fmt.Sprintf("%s %s (%s%s against %s%s): %s.", names[0], fmt.Sprintf(v.Says, fmt.Sprintf("%.2fx", v.Ratio), names[1]),
		Number(v.Median[0]), unit, Number(v.Median[1]), unit, outcome)
}

// Summary is one line about one scenario's result.
func Summary(r loadgen.Result) string {
	m := r.Metrics
	var s string
	switch r.Scenario {
	case loadgen.ScenarioFleet, loadgen.ScenarioFleet10x:
		s = fmt.Sprintf("%s µs server CPU/msg  p50 %s µs  p99 %s µs  p99.9 %s µs  RSS %s MiB  (%s of %s acks/s; %s syscalls and %s context switches/msg; generator lag p99 %s µs; CPU: server %s%%, generator %s%%, others %s%%)",
			Number(m[loadgen.MetricCPUPerMsg]), Number(m[loadgen.MetricP50]), Number(m[loadgen.MetricP99]), Number(m[loadgen.MetricP999]),
			Number(m[loadgen.MetricRSS]), Number(m[loadgen.MetricRate]), Number(m[loadgen.MetricOffered]),
			Number(m[loadgen.MetricSyscallsPerMsg]), Number(m[loadgen.MetricSwitchesPerMsg]), Number(m[loadgen.MetricLagP99]),
			Number(m[loadgen.MetricServerCPU]), Number(m[loadgen.MetricGenCPU]), Number(m[loadgen.MetricOtherCPU]))
	case loadgen.ScenarioLatency:
		s = fmt.Sprintf("p50 %s µs  p99 %s µs  p99.9 %s µs  (%s round trips/s; CPU: server %s%%, generator %s%%, others %s%%)",
			Number(m[loadgen.MetricP50]), Number(m[loadgen.MetricP99]), Number(m[loadgen.MetricP999]),
			Number(m[loadgen.MetricRate]), Number(m[loadgen.MetricServerCPU]), Number(m[loadgen.MetricGenCPU]),
			Number(m[loadgen.MetricOtherCPU]))
	case loadgen.ScenarioAck, loadgen.ScenarioEmit:
		s = fmt.Sprintf("%s msg/s  %s µs server CPU/msg  (CPU: server %s%%, generator %s%%, others %s%%; RSS %s MiB)",
			Number(m[loadgen.MetricRate]), Number(m[loadgen.MetricCPUPerMsg]),
			Number(m[loadgen.MetricServerCPU]), Number(m[loadgen.MetricGenCPU]), Number(m[loadgen.MetricOtherCPU]),
			Number(m[loadgen.MetricRSS]))
	case loadgen.ScenarioCluster:
		return ClusterSummary(r)
	case loadgen.ScenarioDevices:
		s = fmt.Sprintf("%s devices: connect %s s  pair %s s  %s KiB/device  (RSS %s -> %s MiB, idle CPU %s%%; others %s%%)",
			Number(m[loadgen.MetricDevices]), Number(m[loadgen.MetricConnect]), Number(m[loadgen.MetricPair]),
			Number(m[loadgen.MetricMemPerDevice]), Number(m[loadgen.MetricRSSBase]), Number(m[loadgen.MetricRSS]),
			Number(m[loadgen.MetricIdleCPU]), Number(m[loadgen.MetricOtherCPU]))
	}
	if r.Errors > 0 {
		s += fmt.Sprintf("  ERRORS %d: %s", r.Errors, r.FirstError)
	}
	return s
}

// Number formats a figure with three significant digits at most below
// 100, and thousands separators above.
func Number(v float64) string {
	switch a := math.Abs(v); {
	case math.IsNaN(v):
		return "-"
	case a >= 100:
		return thousands(strconv.FormatFloat(math.Round(v), 'f', 0, 64))
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

func thousands(s string) string {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func seconds(s float64) string {
	return fmt.Sprintf("%dm%02ds", int(s)/60, int(s)%60)
}
