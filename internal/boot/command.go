package boot

import (
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
)

// SplitCommand splits a command line into words as a shell would for a
// simple command: white space separates words, single quotes keep
// everything up to the next one, double quotes keep everything but a
// backslash-escaped '"' or '\', and a backslash outside quotes keeps the
// next character. Nothing is expanded.
func SplitCommand(s string) ([]string, error) {
	var words []string
	var w strings.Builder
	in, quote := false, byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote == '\'':
			if c == '\'' {
				quote = 0
			} else {
				w.WriteByte(c)
			}
		case quote == '"':
			switch {
			case c == '"':
				quote = 0
			case c == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\'):
				i++
				w.WriteByte(s[i])
			default:
				w.WriteByte(c)
			}
		case c == '\'' || c == '"':
			quote, in = c, true
		case c == '\\':
			if i+1 == len(s) {
				return nil, errors.New("a backslash at the end")
			}
			i++
			w.WriteByte(s[i])
			in = true
		case c == ' ' || c == '\t' || c == '\n':
			if in {
				words = append(words, w.String())
				w.Reset()
				in = false
			}
		default:
			w.WriteByte(c)
			in = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated %c quote", quote)
	}
	if in {
		words = append(words, w.String())
	}
	if len(words) == 0 {
		return nil, errors.New("empty command")
	}
	return words, nil
}

// CommandFiles packs the program of a command for the guest
// (ktstr-boot --exec): a program given as a path, or found on the host's
// PATH, goes into the initramfs with its libraries as a scheduler does
// (SchedulerFiles), and argv[0] becomes its path in the guest. A path
// that does not exist on the host is left as it is: a file of the
// initramfs (--include DST).
func CommandFiles(argv []string) ([]File, []string, error) {
	prog := argv[0]
	host, err := exec.LookPath(prog)
	if err != nil {
		if strings.ContainsRune(prog, '/') {
			return nil, argv, nil // a path in the guest
		}
		return nil, nil, fmt.Errorf("%s: not found on this host's PATH (give a path in the guest, such as an --include's DST)", prog)
	}
	if host, err = filepath.Abs(host); err != nil {
		return nil, nil, err
	}
	files, dst, err := SchedulerFiles(host)
	if err != nil {
		return nil, nil, err
	}
	return files, append([]string{dst}, argv[1:]...), nil
}

// ShellCommand is the guest command of ktstr-boot --shell: shell (a path
// or a name on the host's PATH; "" picks busybox, else sh), packed as
// CommandFiles does. Busybox is started after installing its applets
// into /bin, so that the shell has ls, cat, dmesg and the rest.
func ShellCommand(shell string) ([]File, []string, error) {
	if shell == "" {
		shell = "sh"
		if _, err := exec.LookPath("busybox"); err == nil {
			shell = "busybox"
		}
	}
	files, argv, err := CommandFiles([]string{shell})
	if err != nil {
		return nil, nil, err
	}
	if filepath.Base(argv[0]) == "busybox" {
		bb := argv[0]
		argv = []string{bb, "sh", "-c", bb + " mkdir -p /bin && " + bb + " --install -s /bin; exec " + bb + " sh -i"}
	} else {
		argv = append(argv, "-i")
	}
	return files, argv, nil
}
