// The same program with only the import swapped: it no longer compiles,
// because pexec also exports Handle (TestMigrationDotImport).
package main

import . "github.com/pexec-dev/pexec/pexec"

// Handle is the program's own name.
type Handle struct{}

func main() {
	_ = Command("true")
	_ = Handle{}
}
