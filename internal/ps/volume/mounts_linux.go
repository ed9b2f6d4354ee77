package volume

import (
	"strings"

	"github.com/moby/sys/mountinfo"
)

// mountOf returns the mount holding the resolved absolute path p: the one
// whose mount point is the longest prefix of p on element boundaries, the
// last listed when several share that mount point (the later one is
// mounted on top). It returns nil when none does.
func mountOf(mounts []*mountinfo.Info, p string) *mountinfo.Info {
	var best *mountinfo.Info
	for _, m := range mounts {
		if !under(p, m.Mountpoint) {
			continue
		}
		if best == nil || len(m.Mountpoint) >= len(best.Mountpoint) {
			best = m
		}
	}
	return best
}

// under reports whether p is dir or below it.
func under(p, dir string) bool {
	if dir == "/" {
		return strings.HasPrefix(p, "/")
	}
	return p == dir || strings.HasPrefix(p, dir+"/")
}

// visible drops the mounts hidden by a later mount on the same mount point,
// keeping the table's order.
func visible(mounts []*mountinfo.Info) []*mountinfo.Info {
	last := map[string]int{}
	for i, m := range mounts {
		last[m.Mountpoint] = i
	}
	var out []*mountinfo.Info
	for i, m := range mounts {
		if last[m.Mountpoint] == i {
			out = append(out, m)
		}
	}
	return out
}
