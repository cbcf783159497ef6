package pexectest

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The jail: a seccomp filter that makes pidfd system calls fail with
// ENOSYS, as on a kernel that predates them, so that the PID-mode paths of
// Go's runtime, of pexec and of the code under test run for real on a
// modern kernel. The filter is classic BPF over struct seccomp_data
// (<linux/seccomp.h>):
//
//	struct seccomp_data {
//		int   nr;                  // offset 0
//		__u32 arch;                // offset 4
//		__u64 instruction_pointer; // offset 8
//		__u64 args[6];             // offset 16 + 8*i
//	};
//
// JailNoPidfd denies pidfd_open, pidfd_send_signal, pidfd_getfd, clone3
// (whose flags live in memory a filter cannot read) and clone with
// CLONE_PIDFD in its flags. JailNoPidfdSpawn denies only clone3 and clone
// with CLONE_PIDFD. Everything else, including clone without CLONE_PIDFD
// (threads, fork, vfork), is allowed; a system call of another ABI (x32 on
// amd64, or another AUDIT_ARCH) is denied.

const (
	seccompDataNr   = 0
	seccompDataArch = 4
	seccompDataArgs = 16
)

// auditArch returns the AUDIT_ARCH_* value of the running GOARCH, which the
// filter checks first: syscall numbers mean nothing for another ABI.
func auditArch() (uint32, error) {
	switch runtime.GOARCH {
	case "amd64":
		return unix.AUDIT_ARCH_X86_64, nil
	case "386":
		return unix.AUDIT_ARCH_I386, nil
	case "arm64":
		return unix.AUDIT_ARCH_AARCH64, nil
	case "arm":
		return unix.AUDIT_ARCH_ARM, nil
	case "riscv64":
		return unix.AUDIT_ARCH_RISCV64, nil
	case "ppc64le":
		return unix.AUDIT_ARCH_PPC64LE, nil
	case "ppc64":
		return unix.AUDIT_ARCH_PPC64, nil
	case "s390x":
		return unix.AUDIT_ARCH_S390X, nil
	case "loong64":
		return unix.AUDIT_ARCH_LOONGARCH64, nil
	case "mips":
		return unix.AUDIT_ARCH_MIPS, nil
	case "mipsle":
		return unix.AUDIT_ARCH_MIPSEL, nil
	case "mips64":
		return unix.AUDIT_ARCH_MIPS64, nil
	case "mips64le":
		return unix.AUDIT_ARCH_MIPSEL64, nil
	}
	return 0, fmt.Errorf("pexectest: no seccomp AUDIT_ARCH for GOARCH %s: %w", runtime.GOARCH, errors.ErrUnsupported)
}

// cloneFlagsOffset returns where the low 32 bits of clone(2)'s flags
// argument are in seccomp_data: flags is the first argument except on s390x,
// where the first two are swapped; each argument is a __u64 in native byte
// order.
func cloneFlagsOffset() uint32 {
	arg := uint32(0)
	if runtime.GOARCH == "s390x" {
		arg = 1
	}
	off := seccompDataArgs + 8*arg
	x := uint16(1)
	if *(*byte)(unsafe.Pointer(&x)) == 0 { // big endian: the low half comes second
		off += 4
	}
	return off
}

// bpfProg assembles classic BPF with symbolic jump targets.
type bpfProg struct {
	insns  []unix.SockFilter
	fixups map[int][2]string // instruction -> (true label, false label)
	labels map[string]int
}

func (p *bpfProg) stmt(code uint16, k uint32) {
	p.insns = append(p.insns, unix.SockFilter{Code: code, K: k})
}

// jump appends a conditional jump; an empty label means the next instruction.
func (p *bpfProg) jump(code uint16, k uint32, jt, jf string) {
	if p.fixups == nil {
		p.fixups = map[int][2]string{}
	}
	p.fixups[len(p.insns)] = [2]string{jt, jf}
	p.insns = append(p.insns, unix.SockFilter{Code: code, K: k})
}

func (p *bpfProg) label(name string) {
	if p.labels == nil {
		p.labels = map[string]int{}
	}
	p.labels[name] = len(p.insns)
}

func (p *bpfProg) assemble() ([]unix.SockFilter, error) {
	for i, l := range p.fixups {
		for j, name := range l {
			if name == "" {
				continue
			}
			at, ok := p.labels[name]
			d := at - i - 1
			if !ok || d < 0 || d > 255 {
				return nil, fmt.Errorf("pexectest: bad BPF jump to %q from %d", name, i)
			}
			if j == 0 {
				p.insns[i].Jt = uint8(d)
			} else {
				p.insns[i].Jf = uint8(d)
			}
		}
	}
	return p.insns, nil
}

// jailFilter returns the filter program of j, described at the top of this
// file.
func jailFilter(j Jail) ([]unix.SockFilter, error) {
	denied := []uintptr{unix.SYS_CLONE3}
	switch j {
	case JailNoPidfd:
		denied = append(denied, unix.SYS_PIDFD_OPEN, unix.SYS_PIDFD_SEND_SIGNAL, unix.SYS_PIDFD_GETFD)
	case JailNoPidfdSpawn:
	default:
		return nil, fmt.Errorf("pexectest: unknown %v", j)
	}
	arch, err := auditArch()
	if err != nil {
		return nil, err
	}
	var p bpfProg
	p.stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, seccompDataArch)
	p.jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, arch, "", "deny")
	p.stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, seccompDataNr)
	if runtime.GOARCH == "amd64" {
		// x32 system calls (__X32_SYSCALL_BIT) share AUDIT_ARCH_X86_64.
		p.jump(unix.BPF_JMP|unix.BPF_JGE|unix.BPF_K, 0x40000000, "deny", "")
	}
	for _, nr := range denied {
		p.jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, uint32(nr), "deny", "")
	}
	p.jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, uint32(unix.SYS_CLONE), "", "allow")
	p.stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, cloneFlagsOffset())
	p.jump(unix.BPF_JMP|unix.BPF_JSET|unix.BPF_K, unix.CLONE_PIDFD, "deny", "allow")
	p.label("allow")
	p.stmt(unix.BPF_RET|unix.BPF_K, unix.SECCOMP_RET_ALLOW)
	p.label("deny")
	p.stmt(unix.BPF_RET|unix.BPF_K, unix.SECCOMP_RET_ERRNO|uint32(unix.ENOSYS)&unix.SECCOMP_RET_DATA)
	return p.assemble()
}

// EnterJail installs, in the calling process, the seccomp filter of j
// (see [Jail]). With SECCOMP_FILTER_FLAG_TSYNC the filter covers every
// thread of the process, including those the Go runtime creates later,
// and every child it starts. It cannot be undone: call it only in a process
// of its own, first thing, before anything (os.StartProcess,
// os.FindProcess, [pexec.Supported]) has probed for pidfd support, which
// Go's runtime and pexec do once. A helper made [Jailed] calls it for you.
// It returns an error wrapping [errors.ErrUnsupported] on an architecture
// the filter does not know, and the prctl or seccomp error where the
// kernel refuses (no CONFIG_SECCOMP_FILTER).
func EnterJail(j Jail) error {
	filter, err := jailFilter(j)
	if err != nil {
		return err
	}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	// no_new_privs is per thread; seccomp with TSYNC copies it to the other
	// threads along with the filter, so both calls must be on one thread.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return os.NewSyscallError("prctl(PR_SET_NO_NEW_PRIVS)", err)
	}
	r, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&prog)))
	runtime.KeepAlive(filter)
	if errno != 0 {
		return os.NewSyscallError("seccomp(SECCOMP_SET_MODE_FILTER)", errno)
	}
	if r != 0 {
		return fmt.Errorf("pexectest: seccomp TSYNC: thread %d could not be synchronized", r)
	}
	return nil
}
