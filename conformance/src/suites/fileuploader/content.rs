//! File contents and chunkings, described by a few numbers so proptest can
//! generate and shrink them, and regenerated on the fly so a 1 GiB upload
//! never sits in memory.

use proptest::prelude::*;
use sha2::{Digest, Sha256};

use crate::s3::Stored;

/// Chunks are at most this long, as the clients send them.
pub(super) const MAX_CHUNK: usize = 4 * 1024 * 1024;

/// Past this many messages, the rest of a file goes in `MAX_CHUNK`s: a
/// 64 MiB file in 1-byte chunks would test patience, not the server.
const MAX_VARIED_MESSAGES: usize = 1024;

/// `size` pseudo-random bytes from `seed`. Byte `i` depends only on the
/// seed and `i`, so any chunking of the same file sends the same bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Content {
    pub(super) seed: u64,
    pub(super) size: u64,
}

impl Content {
    /// Writes bytes `offset..offset + buf.len()` into `buf`.
    pub(super) fn fill(&self, offset: u64, buf: &mut [u8]) {
        let mut position = offset;
        let mut rest = buf;
        while !rest.is_empty() {
            let word = splitmix(self.seed ^ (position / 8).wrapping_mul(0x9E37_79B9_7F4A_7C15)).to_le_bytes();
            let start = (position % 8) as usize;
            let take = (8 - start).min(rest.len());
            rest[..take].copy_from_slice(&word[start..start + take]);
            rest = &mut rest[take..];
            position += take as u64;
        }
    }

    /// Bytes `offset..offset + len`.
    pub(super) fn bytes(&self, offset: u64, len: usize) -> Vec<u8> {
        let mut buf = vec![0; len];
        self.fill(offset, &mut buf);
        buf
    }

    /// What a correct server reports, and S3 must hold: the size, SHA-256
    /// and CRC32C of every byte.
    pub(super) fn stored(&self) -> Stored {
        let (mut sha, mut crc) = (Sha256::new(), 0u32);
        let mut buf = vec![0; MAX_CHUNK];
        let mut offset = 0;
        while offset < self.size {
            let len = (self.size - offset).min(MAX_CHUNK as u64) as usize;
            self.fill(offset, &mut buf[..len]);
            sha.update(&buf[..len]);
            crc = crc32c::crc32c_append(crc, &buf[..len]);
            offset += len as u64;
        }
        Stored { size: self.size, sha256: sha.finalize().into(), crc32c: crc }
    }
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// How a file is cut into messages: these lengths, in turn, over and over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Chunking {
    pub(super) lengths: Vec<usize>,
}

impl Chunking {
    /// One message per `MAX_CHUNK`.
    pub(super) fn whole() -> Chunking {
        Chunking { lengths: vec![MAX_CHUNK] }
    }

    /// The message lengths for a file of `size` bytes. An empty file is one
    /// empty message: the first message must name the file. Empty messages
    /// may come anywhere else, as the contract allows.
    pub(super) fn cut(&self, size: u64) -> Vec<usize> {
        let mut cuts = Vec::new();
        let mut left = size;
        // A chunking of empty messages alone would never end.
        let whole = Chunking::whole();
        let lengths =
            if self.lengths.iter().any(|&length| length > 0) { &self.lengths } else { &whole.lengths };
        let mut turn = lengths.iter().cycle();
        while left > 0 {
            let length = if cuts.len() < MAX_VARIED_MESSAGES {
                *turn.next().expect("chunkings have at least one length")
            } else {
                MAX_CHUNK
            };
            let length = (length as u64).min(left);
            cuts.push(length as usize);
            left -= length;
        }
        if cuts.is_empty() {
            cuts.push(0);
        }
        cuts
    }
}

/// Chunk lengths from 0 B to 4 MiB: empty, tiny, typical and large ones
/// mixed. They shrink towards what is simplest to replay: fewer lengths,
/// and each towards larger chunks, until one chunking sends the file in
/// `MAX_CHUNK` pieces.
pub(super) fn chunking() -> impl Strategy<Value = Chunking> {
    // Each arm draws a distance below its largest length, which shrinks to
    // zero; the arms are listed largest first, where shrinking ends.
    let below = |largest: usize, smallest: usize| (0..=largest - smallest).prop_map(move |x| largest - x);
    let length = prop_oneof![
        3 => below(MAX_CHUNK, 65_537),
        4 => below(65_536, 17),
        2 => below(16, 1),
        1 => Just(0usize),
    ];
    prop::collection::vec(length, 1..=8).prop_map(|lengths| Chunking { lengths })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_chunking_sends_the_same_bytes() {
        let content = Content { seed: 42, size: 1000 };
        let whole = content.bytes(0, 1000);
        let mut pieced = Vec::new();
        let mut offset = 0u64;
        for len in (Chunking { lengths: vec![3, 7, 1] }).cut(content.size) {
            pieced.extend(content.bytes(offset, len));
            offset += len as u64;
        }
        assert_eq!(whole, pieced);
        assert_eq!(content.stored().sha256, <[u8; 32]>::from(Sha256::digest(&whole)));
    }

    #[test]
    fn cuts_cover_the_file_and_stay_few() {
        let cuts = Chunking { lengths: vec![1] }.cut(64 << 20);
        assert_eq!(cuts.iter().map(|&c| c as u64).sum::<u64>(), 64 << 20);
        assert!(cuts.len() <= MAX_VARIED_MESSAGES + 16);
        assert_eq!(Chunking::whole().cut(0), vec![0]);
    }

    #[test]
    fn empty_messages_come_anywhere_but_never_alone() {
        assert_eq!(Chunking { lengths: vec![2, 0] }.cut(5), vec![2, 0, 2, 0, 1]);
        assert_eq!(Chunking { lengths: vec![0] }.cut(5), vec![5]);
    }

    /// A failure that any chunking shows shrinks to the simplest replay: the
    /// file in `MAX_CHUNK` pieces.
    #[test]
    fn chunkings_shrink_to_whole_chunks() {
        use proptest::test_runner::{Config, TestError, TestRunner};
        let mut runner = TestRunner::new(Config { failure_persistence: None, ..Config::default() });
        let result = runner.run(&chunking(), |_| Err(proptest::test_runner::TestCaseError::fail("always")));
        let Err(TestError::Fail(_, minimal)) = result else { panic!("{result:?}") };
        assert_eq!(minimal, Chunking::whole());
    }
}
