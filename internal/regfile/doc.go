// Package regfile opens the files a user names on a command line
// (scenario files, files for the initramfs, kernels) only when they are
// regular files of a bounded size. A FIFO, a device such as /dev/zero or
// a directory is refused at once: the open never blocks (O_NONBLOCK) and
// the type and size come from the opened descriptor, so the answer is
// about the file that is then read, and a read never takes more than the
// bound.
package regfile
