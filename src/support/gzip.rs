//! Parallel, deterministic gzip, in the manner of pigz.
//!
//! The input is cut into fixed 1 MiB chunks. Each chunk is deflated on its own thread with
//! the previous chunk's last 32 KiB as its dictionary and ends with a sync flush (the last
//! ends the stream), so the concatenated chunks form one ordinary deflate stream inside one
//! gzip member: any gzip reader reads it. The output depends only on the input and the level,
//! never on thread timing, and the header carries no time stamp or name.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

const CHUNK: usize = 1 << 20;
const WINDOW: usize = 32 * 1024;
/// gzip header: magic, deflate, no flags, mtime 0, no extra flags, OS "unknown".
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

struct Job {
    index: u64,
    data: Vec<u8>,
    dictionary: Vec<u8>,
    last: bool,
}

type Done = (u64, io::Result<Vec<u8>>);

/// A gzip writer that compresses on all cores; call [`ParallelGzEncoder::finish`] at the end.
pub struct ParallelGzEncoder<W: Write> {
    out: W,
    chunk: Vec<u8>,
    dictionary: Vec<u8>,
    crc: Crc,
    next: u64,
    written: u64,
    ready: BTreeMap<u64, Vec<u8>>,
    jobs: Option<SyncSender<Job>>,
    done: Receiver<Done>,
    workers: Vec<JoinHandle<()>>,
    in_flight: usize,
    max_in_flight: usize,
}

impl<W: Write> ParallelGzEncoder<W> {
    /// A new encoder at `level` (0-9) writing to `out`.
    pub fn new(mut out: W, level: u32) -> io::Result<ParallelGzEncoder<W>> {
        out.write_all(&HEADER)?;
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let (jobs, job_rx) = mpsc::sync_channel::<Job>(threads);
        let (done_tx, done) = mpsc::channel::<Done>();
        let job_rx = Arc::new(Mutex::new(job_rx));
        let workers = (0..threads)
            .map(|_| {
                let (job_rx, done_tx) = (job_rx.clone(), done_tx.clone());
                std::thread::spawn(move || {
                    loop {
                        let job = match job_rx.lock().unwrap().recv() {
                            Ok(job) => job,
                            Err(_) => break,
                        };
                        let result = deflate(level, &job.data, &job.dictionary, job.last);
                        if done_tx.send((job.index, result)).is_err() {
                            break;
                        }
                    }
                })
            })
            .collect();
        Ok(ParallelGzEncoder {
            out,
            chunk: Vec::with_capacity(CHUNK),
            dictionary: Vec::new(),
            crc: Crc::new(),
            next: 0,
            written: 0,
            ready: BTreeMap::new(),
            jobs: Some(jobs),
            done,
            workers,
            in_flight: 0,
            max_in_flight: threads * 2,
        })
    }

    fn dispatch(&mut self, last: bool) -> io::Result<()> {
        let data = std::mem::replace(&mut self.chunk, Vec::with_capacity(CHUNK));
        self.crc.update(&data);
        let dictionary = std::mem::replace(&mut self.dictionary, data[data.len().saturating_sub(WINDOW)..].to_vec());
        let job = Job { index: self.next, data, dictionary, last };
        self.next += 1;
        self.jobs
            .as_ref()
            .expect("jobs are open until finish")
            .send(job)
            .map_err(|_| io::Error::other("a compression thread stopped"))?;
        self.in_flight += 1;
        while self.in_flight >= self.max_in_flight {
            self.collect_one()?;
        }
        Ok(())
    }

    fn collect_one(&mut self) -> io::Result<()> {
        let (index, result) = self.done.recv().map_err(|_| io::Error::other("a compression thread stopped"))?;
        self.in_flight -= 1;
        self.ready.insert(index, result?);
        while let Some(bytes) = self.ready.remove(&self.written) {
            self.out.write_all(&bytes)?;
            self.written += 1;
        }
        Ok(())
    }

    /// Compress what is left, write the trailer, and return the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.dispatch(true)?;
        self.jobs = None;
        while self.in_flight > 0 {
            self.collect_one()?;
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        let (sum, amount) = (self.crc.sum(), self.crc.amount());
        self.out.write_all(&sum.to_le_bytes())?;
        self.out.write_all(&amount.to_le_bytes())?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for ParallelGzEncoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(CHUNK - self.chunk.len());
        self.chunk.extend_from_slice(&buf[..n]);
        if self.chunk.len() == CHUNK {
            self.dispatch(false)?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Raw-deflate one chunk, primed with `dictionary`; a sync flush ends it unless it is last.
fn deflate(level: u32, data: &[u8], dictionary: &[u8], last: bool) -> io::Result<Vec<u8>> {
    let mut c = Compress::new(Compression::new(level), false);
    if !dictionary.is_empty() {
        c.set_dictionary(dictionary).map_err(io::Error::other)?;
    }
    let flush = if last { FlushCompress::Finish } else { FlushCompress::Sync };
    let mut out = Vec::with_capacity(data.len() + data.len() / 16 + 1024);
    let mut input = data;
    loop {
        if out.capacity() - out.len() < 4096 {
            out.reserve(64 * 1024);
        }
        let before = c.total_in();
        let status = c.compress_vec(input, &mut out, flush).map_err(io::Error::other)?;
        input = &input[(c.total_in() - before) as usize..];
        let room_left = out.len() < out.capacity();
        match status {
            Status::StreamEnd => break,
            _ if !last && input.is_empty() && room_left => break,
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn compress(data: &[u8], level: u32) -> Vec<u8> {
        let mut enc = ParallelGzEncoder::new(Vec::new(), level).unwrap();
        for piece in data.chunks(7919) {
            enc.write_all(piece).unwrap();
        }
        enc.finish().unwrap()
    }

    fn sample(len: usize) -> Vec<u8> {
        let mut x: u64 = 1;
        (0..len)
            .map(|i| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                if i % 3 == 0 { b'a' + (i % 7) as u8 } else { (x >> 56) as u8 }
            })
            .collect()
    }

    #[test]
    fn output_is_ordinary_gzip_and_deterministic() {
        for len in [0, 1, CHUNK - 1, CHUNK, 3 * CHUNK + 12345] {
            let data = sample(len);
            let gz = compress(&data, 6);
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut back).unwrap();
            assert_eq!(back, data, "round trip of {len} bytes");
            assert_eq!(compress(&data, 6), gz, "same input, same bytes");
        }
    }

    #[test]
    fn compressible_input_shrinks() {
        let data: Vec<u8> = b"lockstep ".iter().cycle().take(5 * CHUNK).copied().collect();
        assert!(compress(&data, 6).len() < data.len() / 50);
    }
}
