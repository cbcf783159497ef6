package pexectest

import "errors"

// ProgramArgs exposes programArgs, which removes a binfmt_misc
// interpreter's words from a command line, to TestProgramArgs.
func ProgramArgs(words []string, comm string, interps map[string]bool) []string {
	return programArgs(words, comm, interps)
}

// AdoptionErr says why the test process does not adopt orphans (see
// Main), or nil if it does.
func AdoptionErr() error {
	if adoption.on.Load() {
		return nil
	}
	if adoption.err == nil {
		return errors.New("Main was not called")
	}
	return adoption.err
}
