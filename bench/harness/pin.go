package harness

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// PinSelf restricts every thread of this process to one CPU; threads
// created later inherit the restriction from the thread that creates them.
func PinSelf(cpu int) error {
	var set unix.CPUSet
	set.Set(cpu)
	// Twice: a thread started while the first pass ran is caught by the second.
	for range 2 {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return err
		}
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			if err := unix.SchedSetaffinity(tid, &set); err != nil {
				return fmt.Errorf("pin thread %d to CPU %d: %w", tid, cpu, err)
			}
		}
	}
	return nil
}
