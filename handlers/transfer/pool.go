package transfer

import (
	"context"
	"sync/atomic"
)

// pool hands out at most cap chunk buffers of one size: taking one blocks
// until one is free, which is the engine's backpressure. Buffers are
// allocated on first use, so a small object costs only what it needs.
// (The transfer manager of aws-sdk-go-v2 bounds memory the same way; it is
// not importable for this, hence the few lines here.)
type pool struct {
	size  int64
	free  chan []byte
	inUse atomic.Int64 // buffers taken and not yet returned
	peak  atomic.Int64 // most buffers taken at once
}

func newPool(capacity int, size int64) *pool {
	p := &pool{size: size, free: make(chan []byte, capacity)}
	for range capacity {
		p.free <- nil
	}
	return p
}

// get returns a buffer of the pool's size, waiting for one to be free.
func (p *pool) get(ctx context.Context) ([]byte, error) {
	select {
	case b := <-p.free:
		if b == nil {
			b = make([]byte, p.size)
		}
		storeMax(&p.peak, p.inUse.Add(1))
		return b[:p.size], nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// put returns a buffer taken with get.
func (p *pool) put(b []byte) {
	p.inUse.Add(-1)
	p.free <- b
}

// storeMax raises a to v if v is larger.
func storeMax(a *atomic.Int64, v int64) {
	for {
		old := a.Load()
		if v <= old || a.CompareAndSwap(old, v) {
			return
		}
	}
}
