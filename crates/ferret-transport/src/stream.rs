//! Packets over a byte stream, for links that cannot carry `SOCK_SEQPACKET`
//! (an SSH channel's standard input and output): each frame is a 4-byte
//! little-endian length, then a kind byte and that many bytes less one of
//! payload. The reader trusts nothing: a length of zero or over
//! [`MAX_FRAME`] ends the stream with an error before anything is
//! allocated for it.

use std::io::{self, Read, Write};

use ferret_abi::proto::MAX_MESSAGE;

/// The most bytes one frame's kind and payload may take: one packet of the
/// control protocol and its kind byte.
pub const MAX_FRAME: usize = MAX_MESSAGE + 1;

/// What went wrong reading a frame.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The stream failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The stream ended in the middle of a frame.
    #[error("the stream ended inside a frame")]
    Cut,
    /// A frame's length was zero or over [`MAX_FRAME`].
    #[error("a frame of {0} bytes is not allowed (1 to {MAX_FRAME})")]
    Length(u64),
}

/// Writes one frame of `kind` and `payload`, and flushes it.
pub fn write_frame(w: &mut impl Write, kind: u8, payload: &[u8]) -> io::Result<()> {
    if payload.len() >= MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("a frame payload of {} bytes is too long", payload.len()),
        ));
    }
    let len = (payload.len() + 1) as u32;
    // One write for the whole frame: a head and a payload written apart
    // go out as two TCP segments over SSH, and Nagle's algorithm holds the
    // second until the first is acknowledged (tens of milliseconds of
    // delayed ACK per reply).
    let mut frame = Vec::with_capacity(payload.len() + 5);
    frame.extend_from_slice(&len.to_le_bytes());
    frame.push(kind);
    frame.extend_from_slice(payload);
    w.write_all(&frame)?;
    w.flush()
}

/// Reads one frame: `Ok(None)` at a clean end of stream (before a frame),
/// else the kind and payload.
pub fn read_frame(r: &mut impl Read) -> Result<Option<(u8, Vec<u8>)>, FrameError> {
    let mut head = [0u8; 4];
    match read_full(r, &mut head)? {
        0 => return Ok(None),
        4 => {}
        _ => return Err(FrameError::Cut),
    }
    let len = u32::from_le_bytes(head) as usize;
    if len == 0 || len > MAX_FRAME {
        return Err(FrameError::Length(len as u64));
    }
    // The buffer grows with the bytes that come, not with what the length
    // claims, so a lying head costs nothing until its bytes are sent.
    let mut body = Vec::new();
    loop {
        match r
            .by_ref()
            .take((len - body.len()) as u64)
            .read_to_end(&mut body)
        {
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        }
    }
    if body.len() != len {
        return Err(FrameError::Cut);
    }
    let kind = body[0];
    body.remove(0);
    Ok(Some((kind, body)))
}

/// Reads until `buf` is full or the stream ends; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_come_back_as_written_and_a_clean_end_is_none() {
        let mut out = Vec::new();
        write_frame(&mut out, 0, b"hello").unwrap();
        write_frame(&mut out, 7, b"").unwrap();
        let mut r = &out[..];
        assert_eq!(read_frame(&mut r).unwrap(), Some((0, b"hello".to_vec())));
        assert_eq!(read_frame(&mut r).unwrap(), Some((7, Vec::new())));
        assert_eq!(read_frame(&mut r).unwrap(), None);
    }

    #[test]
    fn a_cut_or_oversized_frame_is_an_error_not_an_allocation() {
        let mut out = Vec::new();
        write_frame(&mut out, 0, b"hello").unwrap();
        for cut in 1..out.len() {
            assert!(
                matches!(read_frame(&mut &out[..cut]), Err(FrameError::Cut)),
                "{cut}"
            );
        }
        let huge = u32::MAX.to_le_bytes();
        assert!(matches!(
            read_frame(&mut &huge[..]),
            Err(FrameError::Length(_))
        ));
        let zero = 0u32.to_le_bytes();
        assert!(matches!(
            read_frame(&mut &zero[..]),
            Err(FrameError::Length(0))
        ));
        let over = ((MAX_FRAME + 1) as u32).to_le_bytes();
        assert!(matches!(
            read_frame(&mut &over[..]),
            Err(FrameError::Length(_))
        ));
    }

    #[test]
    fn a_payload_too_long_for_a_frame_is_refused_before_writing() {
        let mut out = Vec::new();
        assert!(write_frame(&mut out, 0, &vec![0; MAX_FRAME]).is_err());
        assert!(out.is_empty());
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_read_as_frames_then_an_end_or_an_error(data in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let mut r = &data[..];
            // Each frame consumes at least its five bytes of head, so this ends.
            for _ in 0..=data.len() {
                match read_frame(&mut r) {
                    Ok(Some((_, payload))) => proptest::prop_assert!(payload.len() < data.len()),
                    Ok(None) | Err(_) => break,
                }
            }
        }

        #[test]
        fn written_frames_read_back_in_order(frames in proptest::collection::vec((proptest::num::u8::ANY, proptest::collection::vec(proptest::num::u8::ANY, 0..300)), 0..20)) {
            let mut out = Vec::new();
            for (kind, payload) in &frames {
                write_frame(&mut out, *kind, payload).unwrap();
            }
            let mut r = &out[..];
            for frame in &frames {
                let got = read_frame(&mut r).unwrap();
                proptest::prop_assert_eq!(got.as_ref(), Some(frame));
            }
            proptest::prop_assert!(read_frame(&mut r).unwrap().is_none());
        }
    }
}
