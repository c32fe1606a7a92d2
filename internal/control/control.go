package control

import (
	"errors"
	"os"
	"sync"
	"time"

	"github.com/ktstr-go/ktstr/lib/record"
)

// Server accepts control connections and passes each effect record to a
// handler, one at a time, in the order each connection sent them.
type Server struct {
	ln   *os.File
	path string
	mu   sync.Mutex // serialises handler calls
	wg   sync.WaitGroup
	done chan struct{}

	firstGone chan struct{} // closed when the first connection has ended
	firstOnce sync.Once
}

// Listen creates the socket at path with mode 0600 and serves it.
func Listen(path string, handle func(*record.Record)) (*Server, error) {
	os.Remove(path)
	ln, err := listenUnix(path)
	if err != nil {
		return nil, err
	}
	if err := chmodSocket(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	s := &Server{ln: ln, path: path, done: make(chan struct{}), firstGone: make(chan struct{})}
	s.wg.Add(1)
	go s.serve(handle)
	return s, nil
}

func (s *Server) serve(handle func(*record.Record)) {
	defer s.wg.Done()
	for {
		c, err := accept(s.ln)
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.firstOnce.Do(func() { close(s.firstGone) })
			defer c.Close()
			go func() { <-s.done; c.Close() }()
			rd := record.NewReader(c)
			for {
				r, err := rd.Read()
				if err != nil {
					return
				}
				if r.Kind != record.KindEffect {
					continue
				}
				s.mu.Lock()
				handle(r)
				s.mu.Unlock()
			}
		}()
	}
}

// Disconnected is closed once the first client has hung up (normally
// ktstr-dispatch at the end of its input), after its last record was
// handled.
func (s *Server) Disconnected() <-chan struct{} { return s.firstGone }

// Close stops serving, closes every connection and removes the socket.
func (s *Server) Close() error {
	select {
	case <-s.done:
		return nil
	default:
	}
	close(s.done)
	err := s.ln.Close()
	s.wg.Wait()
	os.Remove(s.path)
	return err
}

// Client sends effect records to a ktstr-boot.
type Client struct {
	c *os.File
	w *record.Writer
}

// Dial connects to the socket at path, retrying until it exists or wait
// has passed.
func Dial(path string, wait time.Duration) (*Client, error) {
	deadline := time.Now().Add(wait)
	for {
		c, err := dialUnix(path)
		if err == nil {
			return &Client{c: c, w: record.NewWriter(c, false)}, nil
		}
		if time.Now().After(deadline) {
			return nil, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Send writes one record. A ktstr-boot that has gone away (its VM ended)
// gives ErrGone.
func (c *Client) Send(r *record.Record) error {
	err := c.w.Write(r)
	if err == nil {
		err = c.w.Flush()
	}
	if err != nil && isBrokenPipe(err) {
		return ErrGone
	}
	return err
}

// ErrGone is returned when ktstr-boot closed the control socket.
var ErrGone = errors.New("control: ktstr-boot has gone away")

// Close closes the connection.
func (c *Client) Close() error { return c.c.Close() }
