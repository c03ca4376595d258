//! The device of a wgpu backend: adapter choice, device creation with the
//! adapter's own limits, word buffers, error scopes and read-back.
//!
//! Invariants: every wgpu call that can fail validation runs inside
//! [`Gpu::scoped`], so wgpu's errors come back as [`Error::Backend`] instead
//! of reaching the uncaptured-error handler (which would panic by default;
//! ours discards them). Word buffers are `STORAGE | COPY_SRC | COPY_DST`,
//! hold at least one word, and never exceed the device's
//! `max_buffer_size` or `max_storage_buffer_binding_size` (nor 2^32 words,
//! the reach of a shader's 32-bit index), so every buffer can be bound whole.

use std::sync::mpsc;
use std::sync::Arc;

use super::{Int64Mode, WgpuOptions};
use crate::error::{Error, Result};

/// A `wgpu` failure as this crate's error.
pub(crate) fn backend_error(detail: impl Into<String>) -> Error {
    Error::Backend {
        backend: "wgpu".into(),
        detail: detail.into(),
    }
}

/// Bytes per word.
pub(crate) const WORD_BYTES: u64 = 8;

/// An open device and its properties.
#[derive(Debug)]
pub(crate) struct Gpu {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    pub(crate) limits: wgpu::Limits,
    pub(crate) name: String,
    pub(crate) software: bool,
    pub(crate) int64_native: bool,
}

/// Preference order of adapter types (lower is better).
fn rank(kind: wgpu::DeviceType) -> u8 {
    match kind {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

impl Gpu {
    /// Opens the best adapter the options allow.
    pub(crate) fn open(options: &WgpuOptions) -> Result<Self> {
        let backends = wgpu::Instance::enabled_backend_features();
        if backends.is_empty() {
            return Err(backend_error(
                "no wgpu backend is available on this platform",
            ));
        }
        let mut descriptor = wgpu::InstanceDescriptor::new_without_display_handle();
        descriptor.backends = backends;
        let instance = wgpu::Instance::new(descriptor);
        let adapters = pollster::block_on(instance.enumerate_adapters(backends));
        if adapters.is_empty() {
            return Err(backend_error(
                "no adapter found (is a Vulkan driver installed?)",
            ));
        }
        let describe = |a: &wgpu::Adapter| {
            let info = a.get_info();
            format!("{} ({:?})", info.name, info.device_type)
        };
        let found: Vec<String> = adapters.iter().map(describe).collect();
        let adapter = adapters
            .into_iter()
            .filter(|a| options.allow_software || a.get_info().device_type != wgpu::DeviceType::Cpu)
            .filter(|a| {
                options.int64 != Int64Mode::Native
                    || a.features().contains(wgpu::Features::SHADER_INT64)
            })
            .min_by_key(|a| rank(a.get_info().device_type))
            .ok_or_else(|| {
                backend_error(format!(
                    "no suitable adapter among [{}] (software adapters {}, 64-bit integers {:?})",
                    found.join(", "),
                    if options.allow_software {
                        "allowed"
                    } else {
                        "refused"
                    },
                    options.int64
                ))
            })?;
        let info = adapter.get_info();
        let int64_native = match options.int64 {
            Int64Mode::Emulated => false,
            Int64Mode::Native => true,
            Int64Mode::Auto => adapter.features().contains(wgpu::Features::SHADER_INT64),
        };
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("heformer"),
            required_features: if int64_native {
                wgpu::Features::SHADER_INT64
            } else {
                wgpu::Features::empty()
            },
            required_limits: limits.clone(),
            ..Default::default()
        }))
        .map_err(|e| backend_error(format!("cannot open {}: {e}", info.name)))?;
        // Every call that can fail runs in an error scope; anything else
        // (a failure while wiping a dropped buffer) is best effort.
        device.on_uncaptured_error(Arc::new(|_error: wgpu::Error| {}));
        Ok(Self {
            device,
            queue,
            limits,
            name: info.name,
            software: info.device_type == wgpu::DeviceType::Cpu,
            int64_native,
        })
    }

    /// Runs `f` inside validation, out-of-memory and internal error scopes;
    /// an error wgpu reports there becomes an [`Error::Backend`] naming `op`.
    pub(crate) fn scoped<T>(&self, op: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let memory = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let internal = self.device.push_error_scope(wgpu::ErrorFilter::Internal);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let result = f();
        let errors = [
            pollster::block_on(validation.pop()),
            pollster::block_on(internal.pop()),
            pollster::block_on(memory.pop()),
        ];
        match errors.into_iter().flatten().next() {
            Some(e) => Err(backend_error(format!("{op}: {e}"))),
            None => result,
        }
    }

    /// The size in bytes of a word buffer of `words` words, checked against
    /// the device's limits.
    fn buffer_bytes(&self, op: &str, words: usize) -> Result<u64> {
        let bytes = (words.max(1) as u64)
            .checked_mul(WORD_BYTES)
            .ok_or_else(|| backend_error(format!("{op}: {words} words overflow")))?;
        // Shaders index words with 32-bit integers.
        let limit = self
            .limits
            .max_buffer_size
            .min(self.limits.max_storage_buffer_binding_size)
            .min(u64::from(u32::MAX) * WORD_BYTES);
        if bytes > limit {
            return Err(backend_error(format!(
                "{op}: {words} words exceed the device's largest storage buffer ({limit} bytes)"
            )));
        }
        Ok(bytes)
    }

    /// A word buffer of at least `words` words (unspecified contents).
    /// Call inside [`Gpu::scoped`].
    pub(crate) fn words_buffer(&self, op: &str, words: usize) -> Result<wgpu::Buffer> {
        let size = self.buffer_bytes(op, words)?;
        Ok(self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(op),
            size,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        }))
    }

    /// A word buffer holding `host`. Call inside [`Gpu::scoped`].
    pub(crate) fn upload_words(&self, op: &str, host: &[u64]) -> Result<wgpu::Buffer> {
        self.upload_bytes(op, bytemuck::cast_slice(host))
    }

    /// A word buffer holding `bytes` (a multiple of 4 bytes), zero-padded to
    /// whole words. Call inside [`Gpu::scoped`].
    pub(crate) fn upload_bytes(&self, op: &str, bytes: &[u8]) -> Result<wgpu::Buffer> {
        let buffer = self.words_buffer(op, bytes.len().div_ceil(WORD_BYTES as usize))?;
        if !bytes.is_empty() {
            self.queue.write_buffer(&buffer, 0, bytes);
        }
        Ok(buffer)
    }

    /// Submits `encoder` and lets the device reclaim finished work.
    pub(crate) fn submit(&self, encoder: wgpu::CommandEncoder) {
        self.queue.submit([encoder.finish()]);
        // A non-blocking poll only frees resources of finished submissions;
        // its outcome does not matter here.
        let _ = self.device.poll(wgpu::PollType::Poll);
    }

    /// Waits until every submission so far has finished.
    pub(crate) fn wait(&self, op: &str) -> Result<()> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(|e| backend_error(format!("{op}: waiting for the device: {e}")))
    }

    /// A command encoder.
    pub(crate) fn encoder(&self) -> wgpu::CommandEncoder {
        self.device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None })
    }

    /// Copies the first `words` words of `buffer` to the host and waits.
    pub(crate) fn read_words(&self, buffer: &wgpu::Buffer, words: usize) -> Result<Vec<u64>> {
        if words == 0 {
            return Ok(Vec::new());
        }
        let bytes = self.buffer_bytes("download", words)?;
        self.scoped("download", || {
            let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("download staging"),
                size: bytes,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let mut encoder = self.encoder();
            encoder.copy_buffer_to_buffer(buffer, 0, &staging, 0, bytes);
            self.queue.submit([encoder.finish()]);
            let (sender, receiver) = mpsc::channel();
            staging.map_async(wgpu::MapMode::Read, .., move |r| {
                // The receiver waits below; a send can only fail if it is gone.
                let _ = sender.send(r);
            });
            self.wait("download")?;
            receiver
                .recv()
                .map_err(|e| backend_error(format!("download: mapping never completed: {e}")))?
                .map_err(|e| backend_error(format!("download: mapping failed: {e}")))?;
            let view = staging
                .get_mapped_range(..)
                .map_err(|e| backend_error(format!("download: {e}")))?;
            let mut host = vec![0u64; words];
            bytemuck::cast_slice_mut(&mut host).copy_from_slice(&view);
            drop(view);
            staging.unmap();
            Ok(host)
        })
    }
}
