package verdict

import (
	"io"
	"os"
	"path/filepath"
)

// FoldFile folds the records in the file at path ("-": stdin) as run
// name. A file that cannot be opened is that run's infrastructure
// error.
func FoldFile(name, path string, stdin io.Reader, cfg Config) *Folder {
	if path == "-" {
		return Fold(name, cfg, stdin)
	}
	fh, err := os.Open(path)
	if err != nil {
		f := NewFolder(name, cfg)
		f.ReadError(err)
		return f
	}
	defer fh.Close()
	return Fold(name, cfg, fh)
}

// AddConsoleFile adds the console log at path under its base name; one
// that cannot be read is an infrastructure error of the run.
func (f *Folder) AddConsoleFile(path string) {
	fh, err := os.Open(path)
	if err != nil {
		f.ConsoleError(filepath.Base(path), err)
		return
	}
	defer fh.Close()
	f.AddConsole(filepath.Base(path), fh)
}
