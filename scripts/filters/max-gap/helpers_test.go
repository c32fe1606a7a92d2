package main

import (
	"io"

	"github.com/vmihailenco/msgpack/v5"
)

func newEncoder(w io.Writer) *msgpack.Encoder { return msgpack.NewEncoder(w) }
