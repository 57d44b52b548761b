//! Request bodies: `Content-Length` counting and a streaming `chunked`
//! decoder.
//!
//! A [`BodyDecoder`] is handed whatever input has arrived and says how much
//! of it belongs to the body and which part of that is data (as opposed to
//! chunk framing), never copying or buffering: the data stays in the caller's
//! input until the connection copies it to the output queue. The caller also
//! says how much data it can take now (`data_limit`); the decoder stops there,
//! which is how backpressure reaches the socket.
//!
//! Contract: the decoder never takes a byte past the end of the body (so
//! pipelined requests stay in the input), holds O(1) state whatever the chunk
//! sizes, extensions or trailers, and reports every framing error as a value.
//! Chunk framing is strict: CRLF line ends only, hexadecimal sizes that fit in
//! 64 bits, size lines (with extensions) of at most [`MAX_CHUNK_LINE_BYTES`],
//! trailer sections of at most the head limit. Extensions and trailer fields
//! are tolerated and dropped.

use super::request::RequestFraming;
use super::response::Status;
use core::ops::Range;

/// The longest chunk size line accepted, extensions included.
pub const MAX_CHUNK_LINE_BYTES: usize = 4096;

/// Why a body could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyError {
    /// Bad chunk framing.
    Malformed,
    /// The body grew past the configured maximum.
    TooLarge,
    /// The trailer section grew past the head limit.
    TrailersTooLarge,
}

impl BodyError {
    /// The status that answers this error, if the response has not begun.
    pub(crate) fn status(self) -> Status {
        match self {
            BodyError::Malformed => Status::BadRequest,
            BodyError::TooLarge => Status::ContentTooLarge,
            BodyError::TrailersTooLarge => Status::HeaderFieldsTooLarge,
        }
    }
}

/// What one [`BodyDecoder::decode`] call did with its input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DecodeStep {
    /// How many input bytes belong to the body and were taken.
    pub(crate) consumed: usize,
    /// Which of the taken bytes are body data (the rest is chunk framing).
    pub(crate) data: Range<usize>,
}

/// Reads one request body.
pub(crate) enum BodyDecoder {
    /// `Content-Length`: this many bytes are still to come.
    Length { remaining: u64 },
    /// `Transfer-Encoding: chunked`.
    Chunked(ChunkedDecoder),
}

impl BodyDecoder {
    /// A decoder for a body framed as `framing` (`NoBody` is an empty body).
    pub(crate) fn new(framing: RequestFraming, max_body_bytes: Option<u64>, max_trailer_bytes: usize) -> BodyDecoder {
        match framing {
            RequestFraming::NoBody => BodyDecoder::Length { remaining: 0 },
            RequestFraming::Length(length) => BodyDecoder::Length { remaining: length },
            RequestFraming::Chunked => BodyDecoder::Chunked(ChunkedDecoder::new(max_body_bytes, max_trailer_bytes)),
        }
    }

    /// Takes body bytes from the front of `input`, at most `data_limit` of
    /// them data. Stops at the end of the body.
    pub(crate) fn decode(&mut self, input: &[u8], data_limit: usize) -> Result<DecodeStep, BodyError> {
        match self {
            BodyDecoder::Length { remaining } => {
                let available = input.len().min(data_limit);
                let taken = usize::try_from(*remaining).map_or(available, |left| left.min(available));
                *remaining -= taken as u64;
                Ok(DecodeStep { consumed: taken, data: 0..taken })
            }
            BodyDecoder::Chunked(decoder) => decoder.decode(input, data_limit),
        }
    }

    /// Whether the whole body has been taken.
    pub(crate) fn is_finished(&self) -> bool {
        match self {
            BodyDecoder::Length { remaining } => *remaining == 0,
            BodyDecoder::Chunked(decoder) => decoder.state == ChunkState::Finished,
        }
    }

    /// Whether the body is chunked.
    pub(crate) fn is_chunked(&self) -> bool {
        matches!(self, BodyDecoder::Chunked(_))
    }
}

/// Where a chunked decoder is within the framing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ChunkState {
    /// In the size's hexadecimal digits (`digits` so far).
    Size { digits: usize },
    /// Spaces after the size, before `;` or the line end.
    SizeWhitespace,
    /// In a chunk extension, skipped up to the line end.
    Extension,
    /// After the size line's CR.
    SizeLineFeed,
    /// In the chunk's data.
    Data { remaining: u64 },
    /// After the data, expecting CR.
    DataCarriageReturn,
    /// After the data's CR.
    DataLineFeed,
    /// In a trailer line (`length` bytes so far; an empty line ends the body).
    TrailerLine { length: usize },
    /// After a trailer line's CR.
    TrailerLineFeed { empty_line: bool },
    /// The last chunk and the trailer section have been read.
    Finished,
}

/// A streaming decoder for the `chunked` transfer coding (RFC 9112 §7.1).
pub(crate) struct ChunkedDecoder {
    state: ChunkState,
    chunk_size: u64,
    line_bytes: usize,
    trailer_bytes: usize,
    body_bytes: u64,
    max_body_bytes: Option<u64>,
    max_trailer_bytes: usize,
}

impl ChunkedDecoder {
    fn new(max_body_bytes: Option<u64>, max_trailer_bytes: usize) -> ChunkedDecoder {
        ChunkedDecoder {
            state: ChunkState::Size { digits: 0 },
            chunk_size: 0,
            line_bytes: 0,
            trailer_bytes: 0,
            body_bytes: 0,
            max_body_bytes,
            max_trailer_bytes,
        }
    }

    fn decode(&mut self, input: &[u8], data_limit: usize) -> Result<DecodeStep, BodyError> {
        let mut index = 0;
        while index < input.len() {
            match self.state {
                ChunkState::Finished => break,
                ChunkState::Data { remaining } => return Ok(self.take_data(index, remaining, input.len(), data_limit)),
                _ => self.advance(input[index])?,
            }
            index += 1;
        }
        Ok(DecodeStep { consumed: index, data: index..index })
    }

    fn take_data(&mut self, start: usize, remaining: u64, available_end: usize, data_limit: usize) -> DecodeStep {
        let available = (available_end - start).min(data_limit);
        let taken = usize::try_from(remaining).map_or(available, |left| left.min(available));
        let remaining = remaining - taken as u64;
        self.state = if remaining == 0 { ChunkState::DataCarriageReturn } else { ChunkState::Data { remaining } };
        DecodeStep { consumed: start + taken, data: start..start + taken }
    }

    /// Moves through one framing byte.
    fn advance(&mut self, byte: u8) -> Result<(), BodyError> {
        self.state = match (self.state, byte) {
            (ChunkState::Size { digits }, _) => self.size_digit(digits, byte)?,
            (ChunkState::SizeWhitespace, b' ' | b'\t') => self.count_line_byte(ChunkState::SizeWhitespace)?,
            (ChunkState::SizeWhitespace, b';') => self.count_line_byte(ChunkState::Extension)?,
            (ChunkState::SizeWhitespace | ChunkState::Extension, b'\r') => ChunkState::SizeLineFeed,
            (ChunkState::Extension, _) if is_field_byte(byte) => self.count_line_byte(ChunkState::Extension)?,
            (ChunkState::SizeLineFeed, b'\n') => self.size_line_done()?,
            (ChunkState::DataCarriageReturn, b'\r') => ChunkState::DataLineFeed,
            (ChunkState::DataLineFeed, b'\n') => ChunkState::Size { digits: 0 },
            (ChunkState::TrailerLine { length }, b'\r') => ChunkState::TrailerLineFeed { empty_line: length == 0 },
            (ChunkState::TrailerLine { length }, _) if is_field_byte(byte) => self.trailer_byte(length)?,
            (ChunkState::TrailerLineFeed { empty_line: true }, b'\n') => ChunkState::Finished,
            (ChunkState::TrailerLineFeed { empty_line: false }, b'\n') => ChunkState::TrailerLine { length: 0 },
            _ => return Err(BodyError::Malformed),
        };
        Ok(())
    }

    fn size_digit(&mut self, digits: usize, byte: u8) -> Result<ChunkState, BodyError> {
        let next = match (char::from(byte).to_digit(16), byte) {
            (Some(digit), _) => {
                let size = self.chunk_size.checked_mul(16).and_then(|size| size.checked_add(u64::from(digit)));
                self.chunk_size = size.ok_or(BodyError::Malformed)?;
                ChunkState::Size { digits: digits + 1 }
            }
            (None, _) if digits == 0 => return Err(BodyError::Malformed),
            (None, b' ' | b'\t') => ChunkState::SizeWhitespace,
            (None, b';') => ChunkState::Extension,
            (None, b'\r') => return Ok(ChunkState::SizeLineFeed),
            (None, _) => return Err(BodyError::Malformed),
        };
        self.count_line_byte(next)
    }

    fn count_line_byte(&mut self, next: ChunkState) -> Result<ChunkState, BodyError> {
        self.line_bytes += 1;
        if self.line_bytes > MAX_CHUNK_LINE_BYTES { Err(BodyError::Malformed) } else { Ok(next) }
    }

    fn size_line_done(&mut self) -> Result<ChunkState, BodyError> {
        let size = core::mem::take(&mut self.chunk_size);
        self.line_bytes = 0;
        if size == 0 {
            return Ok(ChunkState::TrailerLine { length: 0 });
        }
        self.body_bytes = self.body_bytes.checked_add(size).ok_or(BodyError::TooLarge)?;
        if self.max_body_bytes.is_some_and(|max| self.body_bytes > max) {
            return Err(BodyError::TooLarge);
        }
        Ok(ChunkState::Data { remaining: size })
    }

    fn trailer_byte(&mut self, length: usize) -> Result<ChunkState, BodyError> {
        self.trailer_bytes += 1;
        if self.trailer_bytes > self.max_trailer_bytes {
            return Err(BodyError::TrailersTooLarge);
        }
        Ok(ChunkState::TrailerLine { length: length + 1 })
    }
}

/// A byte allowed inside a field value or chunk extension: visible ASCII,
/// space, tab, and obs-text (RFC 9110 §5.5).
pub(crate) fn is_field_byte(byte: u8) -> bool {
    byte == b'\t' || (byte >= b' ' && byte != 0x7f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn decode_all(
        decoder: &mut BodyDecoder,
        mut input: &[u8],
        step_size: usize,
    ) -> Result<(Vec<u8>, usize), BodyError> {
        let mut data = Vec::new();
        let mut consumed_total = 0;
        while !decoder.is_finished() && !input.is_empty() {
            let piece = &input[..step_size.min(input.len())];
            let step = decoder.decode(piece, usize::MAX)?;
            data.extend_from_slice(&piece[step.data.clone()]);
            consumed_total += step.consumed;
            input = &input[step.consumed..];
        }
        Ok((data, consumed_total))
    }

    fn chunked() -> BodyDecoder {
        BodyDecoder::new(RequestFraming::Chunked, None, 1024)
    }

    #[test]
    fn decodes_chunks_with_extensions_and_trailers_at_any_step_size() {
        let body = b"4;name=\"va lue\"\r\nWiki\r\n5 ; x\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nExpires: never\r\nX: y\r\n\r\nNEXT";
        for step_size in 1..body.len() {
            let (data, consumed) = decode_all(&mut chunked(), body, step_size).unwrap();
            assert_eq!(data, b"Wikipedia in\r\n\r\nchunks.");
            assert_eq!(consumed, body.len() - 4, "step size {step_size}");
        }
    }

    #[test]
    fn rejects_bad_framing() {
        for bad in [
            &b"\r\n"[..],
            b"g\r\n",
            b"-1\r\n",
            b"1\nx\r\n",
            b"1\r\nxy\r\n",
            b"1\r\nx\n",
            b"1 x\r\n",
            b"1;\x01\r\n",
            b"10000000000000000\r\n",
            b"0\r\nbad\x00trailer\r\n\r\n",
            b"0\r\n\n",
        ] {
            assert_eq!(decode_all(&mut chunked(), bad, 1).unwrap_err(), BodyError::Malformed, "{bad:?}");
        }
    }

    #[test]
    fn enforces_size_limits() {
        let mut limited = BodyDecoder::new(RequestFraming::Chunked, Some(5), 8);
        assert_eq!(decode_all(&mut limited, b"3\r\nabc\r\n3\r\n", 100).unwrap_err(), BodyError::TooLarge);
        let mut limited = BodyDecoder::new(RequestFraming::Chunked, Some(5), 8);
        assert_eq!(decode_all(&mut limited, b"0\r\nX: 12345678\r\n", 100).unwrap_err(), BodyError::TrailersTooLarge);
        let long_extension: Vec<u8> = [&b"1;"[..], &[b'a'; MAX_CHUNK_LINE_BYTES]].concat();
        assert_eq!(decode_all(&mut chunked(), &long_extension, 100).unwrap_err(), BodyError::Malformed);
        assert!(decode_all(&mut chunked(), &[b'0'; 4000], 100).is_ok(), "leading zeros within the line limit");
    }

    #[test]
    fn respects_the_data_limit_and_stops_at_the_body_end() {
        let mut decoder = BodyDecoder::new(RequestFraming::Length(5), None, 0);
        assert_eq!(decoder.decode(b"abcdefg", 2).unwrap(), DecodeStep { consumed: 2, data: 0..2 });
        assert_eq!(decoder.decode(b"cdefg", 0).unwrap(), DecodeStep { consumed: 0, data: 0..0 });
        assert_eq!(decoder.decode(b"cdefg", 99).unwrap(), DecodeStep { consumed: 3, data: 0..3 });
        assert!(decoder.is_finished());
        let mut decoder = chunked();
        assert_eq!(decoder.decode(b"3\r\nabc\r\n", 0).unwrap(), DecodeStep { consumed: 3, data: 3..3 });
    }
}
