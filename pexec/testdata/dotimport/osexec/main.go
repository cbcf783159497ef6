// A program that dot-imports os/exec and declares a top-level name that
// os/exec does not export: it compiles (TestMigrationDotImport).
package main

import . "os/exec"

// Handle is the program's own name.
type Handle struct{}

func main() {
	_ = Command("true")
	_ = Handle{}
}
