package loadgen

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// portRangeFile holds the kernel's range of ephemeral ports.
const portRangeFile = "/proc/sys/net/ipv4/ip_local_port_range"

// LoopbackSources returns the local addresses from which devices
// connections to relayURL, a relay on a loopback address, should come:
// none (the system's choice) when one address has ports enough, or else
// 127.0.0.1, 127.0.0.2... Every connection to one relay from one address
// takes an ephemeral port of its own, and the kernel has about 28,000
// (ip_local_port_range); each address is given at most half of them, so
// that finding a free one stays quick.
func LoopbackSources(relayURL string, devices int) ([]netip.Addr, error) {
	data, err := os.ReadFile(portRangeFile)
	if err != nil {
		return nil, err
	}
	var lo, hi int
	if _, err := fmt.Sscan(string(data), &lo, &hi); err != nil {
		return nil, fmt.Errorf("%s: %w", portRangeFile, err)
	}
	n := sourcesNeeded(devices, hi-lo+1)
	if n <= 1 {
		return nil, nil
	}
	u, err := url.Parse(relayURL)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(u.Hostname()); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("%d devices need more ephemeral ports than one address has (%d-%d), and more local addresses only on loopback, not %s",
			devices, lo, hi, u.Host)
	}
	return loopbackAddrs(n)
}

// sourcesNeeded is how many source addresses devices connections need
// with ports ephemeral ports, half of them each.
func sourcesNeeded(devices, ports int) int {
	per := max(ports/2, 1)
	return (devices + per - 1) / per
}

// loopbackAddrs returns 127.0.0.1 and the n-1 addresses after it.
func loopbackAddrs(n int) ([]netip.Addr, error) {
	if n > 1<<16 {
		return nil, fmt.Errorf("%d source addresses are more than this generator makes", n)
	}
	out := make([]netip.Addr, n)
	for i := range out {
		v := 1 + i
		out[i] = netip.AddrFrom4([4]byte{127, 0, byte(v >> 8), byte(v)})
	}
	return out, nil
}

// bindAddressNoPort sets IP_BIND_ADDRESS_NO_PORT on a socket about to be
// bound to a source address: the kernel then picks its port when it
// connects, unique for the relay's address and port only, instead of at
// bind, unique for every destination, so that each source address reaches
// its whole range of ports.
func bindAddressNoPort(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
	})
	if err != nil {
		return err
	}
	return serr
}
