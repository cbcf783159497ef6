package pexectest

// ProgramArgs exposes programArgs, which removes a binfmt_misc
// interpreter's words from a command line, to TestProgramArgs.
func ProgramArgs(words []string, comm string, interps map[string]bool) []string {
	return programArgs(words, comm, interps)
}
