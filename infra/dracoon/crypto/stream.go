package crypto

import (
	"fmt"
	"io"
)

// streamChunk is the buffer size of EncryptStream and DecryptStream.
const streamChunk = 1 << 20

// EncryptStream encrypts everything read from src with k, a fresh key
// without tag, into dst, in one pass with constant memory, and returns the
// number of bytes and the tag to store in the file key. Like NewSealer it
// refuses a key that carries a tag (ErrKeyUsed). It stops with an error
// wrapping ErrFileTooLarge before writing past MaxFileSize.
func EncryptStream(k PlainFileKey, dst io.Writer, src io.Reader) (int64, []byte, error) {
	s, err := NewSealer(k)
	if err != nil {
		return 0, nil, err
	}
	var acc ghashAcc
	err = stream(dst, src, func(off int64, b []byte) error {
		seg, err := s.Seal(off, b, b)
		if err != nil {
			return err
		}
		return s.g.add(&acc, seg)
	})
	if err != nil {
		return acc.end, nil, fmt.Errorf("encrypt stream: %w", err)
	}
	t := s.g.tag(&acc)
	return acc.end, t[:], nil
}

// DecryptStream decrypts everything read from src with k, which must carry
// the tag, into dst in one pass with constant memory, and returns the number
// of bytes. The plaintext is written before the tag can be checked: it is
// authentic only if DecryptStream returns a nil error, and an error wrapping
// ErrAuthentication means dst received altered content that must be
// discarded.
func DecryptStream(k PlainFileKey, dst io.Writer, src io.Reader) (int64, error) {
	o, err := NewOpener(k)
	if err != nil {
		return 0, err
	}
	var acc ghashAcc
	err = stream(dst, src, func(off int64, b []byte) error {
		seg, err := o.Open(off, b, b)
		if err != nil {
			return err
		}
		return o.g.add(&acc, seg)
	})
	if err != nil {
		return acc.end, fmt.Errorf("decrypt stream: %w", err)
	}
	if err := o.verify(&acc); err != nil {
		return acc.end, fmt.Errorf("decrypt stream: %w", err)
	}
	return acc.end, nil
}

// stream reads src in chunks, transforms each in place at its offset and
// writes it to dst.
func stream(dst io.Writer, src io.Reader, transform func(off int64, b []byte) error) error {
	buf := make([]byte, streamChunk)
	var off int64
	for {
		n, eof, err := fill(src, buf)
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		if n > 0 {
			if err := CheckSize(off + int64(n)); err != nil {
				return err
			}
			if err := transform(off, buf[:n]); err != nil {
				return err
			}
			if _, err := dst.Write(buf[:n]); err != nil {
				return fmt.Errorf("write: %w", err)
			}
			off += int64(n)
		}
		if eof {
			return nil
		}
	}
}

// fill reads until buf is full or src reports io.EOF; other errors, even
// io.ErrUnexpectedEOF, are errors.
func fill(src io.Reader, buf []byte) (n int, eof bool, err error) {
	for n < len(buf) {
		m, err := src.Read(buf[n:])
		n += m
		if err == io.EOF {
			return n, true, nil
		}
		if err != nil {
			return n, false, err
		}
	}
	return n, false, nil
}
