package initramfs

import (
	"fmt"
	"path"
)

// Tree is the set of names in an archive: directories and everything
// else. It enforces what unpacking needs: a name is added once, a
// directory is never also a file, and nothing lies under a file. A
// Writer keeps one; a caller can fill one first to check a layout before
// any file is read.
type Tree struct {
	dirs  map[string]bool
	files map[string]bool
}

// NewTree returns an empty tree (the root exists).
func NewTree() *Tree {
	return &Tree{dirs: map[string]bool{".": true}, files: map[string]bool{}}
}

// Dir adds the directory name and its missing parents, and returns the
// cleaned names of the directories it added, parents first. Adding an
// existing directory adds nothing.
func (t *Tree) Dir(name string) ([]string, error) {
	n, err := clean(name)
	if err != nil {
		return nil, err
	}
	return t.dir(n)
}

func (t *Tree) dir(n string) ([]string, error) {
	if t.dirs[n] {
		return nil, nil
	}
	if t.files[n] {
		return nil, fmt.Errorf("%w: %s is a file, not a directory", ErrDuplicate, n)
	}
	added, err := t.dir(path.Dir(n))
	if err != nil {
		return nil, err
	}
	t.dirs[n] = true
	return append(added, n), nil
}

// File adds name as a non-directory member and returns its cleaned name
// and the parent directories it added, parents first. A name that is
// already in the tree, as a file or a directory, is ErrDuplicate.
func (t *Tree) File(name string) (string, []string, error) {
	n, err := clean(name)
	if err != nil {
		return "", nil, err
	}
	if t.files[n] || t.dirs[n] {
		return "", nil, fmt.Errorf("%w: %s", ErrDuplicate, n)
	}
	added, err := t.dir(path.Dir(n))
	if err != nil {
		return "", nil, err
	}
	t.files[n] = true
	return n, added, nil
}
