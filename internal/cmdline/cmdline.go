// Package cmdline is what the project's commands share in parsing their
// command lines with kong, so that each command's run function can be
// called from its tests like any other: kong's own exits (after --help and
// --version) end no process, they come back from Parse as a status.
package cmdline

import "github.com/alecthomas/kong"

// exit carries kong's exit status from its Exit hook out of Parse.
type exit int

// New is kong.New, with kong's exits turned into what Parse returns.
func New(grammar any, options ...kong.Option) (*kong.Kong, error) {
	return kong.New(grammar, append(options, kong.Exit(func(status int) { panic(exit(status)) }))...)
}

// Parse parses args with a parser from New. When kong has finished the
// command line itself (it printed the help or the version), exited is true
// and status is the exit status kong chose.
func Parse(parser *kong.Kong, args []string) (kctx *kong.Context, status int, exited bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			code, ok := r.(exit)
			if !ok {
				panic(r)
			}
			kctx, status, exited, err = nil, int(code), true, nil
		}
	}()
	kctx, err = parser.Parse(args)
	return kctx, 0, false, err
}
