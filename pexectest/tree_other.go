//go:build !linux

package pexectest

// Trees need Linux: elsewhere pexec gives none (TreeAuto means TreeNone).

// leafRef is never set here.
type leafRef struct{}

func findLeaf(int) leafRef { return leafRef{} }

func treeMembers(*tree) ([]member, error) { return nil, errNoLeakCheck }

func killMembers([]member) {}

func reapMembers([]member) {}
