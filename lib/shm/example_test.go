package shm_test

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ktstr-go/ktstr/lib/shm"
)

// A host creates a region, the guest (here: the same process through the
// guest-visible bytes) writes a frame, and the host reads it exactly once.
func Example() {
	dir, _ := os.MkdirTemp("", "shm-example")
	defer os.RemoveAll(dir)
	l, _ := shm.DefaultLayout(64 << 10)
	host, err := shm.Create(filepath.Join(dir, "region"), l)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer host.Close()

	guest, _ := shm.OpenGuest(host.Mem())
	p := guest.TX().NewProducer(time.Second)
	p.Write([]byte("hello"))

	c := host.TX().NewConsumer()
	a, b, _ := c.Peek()
	fmt.Printf("%s%s\n", a, b)
	c.Advance(len(a) + len(b))
	a, _, _ = c.Peek()
	fmt.Println(len(a), "bytes left at position", c.Position())
	// Output:
	// hello
	// 0 bytes left at position 5
}
