// Package probe keeps the answers of feature probes for the life of the
// process, except the answers that say nothing about the feature.
//
// A probe (does this kernel have PIDFD_GET_INFO? may this process create
// cgroups?) is asked once, by calling what it checks, and its answer is kept,
// as [sync.OnceValues] keeps it. But a call can also fail because a resource
// was short at that moment: no descriptor left in the process (EMFILE), a
// signal (EINTR). Such a failure says nothing about the feature, and keeping
// it would turn the feature off for good after one bad moment. [Once] keeps
// every answer but those ([Transient]): the next call probes again.
package probe
