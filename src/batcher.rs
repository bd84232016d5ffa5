//! Requests served in batches: a request waits here while the batch in flight runs,
//! then goes with everything else that arrived meanwhile in the next one. Under load
//! many requests share one round trip to the database; when idle, a request runs at
//! once. Group commit (one batcher per lane) and the scheduler's step reads are built
//! on it.

use std::future::Future;

use tokio::sync::{mpsc, oneshot};

struct Request<I, O> {
    input: I,
    reply: oneshot::Sender<O>,
}

pub struct Batcher<I, O> {
    requests: mpsc::UnboundedSender<Request<I, O>>,
}

impl<I, O> Clone for Batcher<I, O> {
    fn clone(&self) -> Self {
        Batcher {
            requests: self.requests.clone(),
        }
    }
}

impl<I: Send + 'static, O: Send + 'static> Batcher<I, O> {
    /// Serves requests, at most `max` at a time, with `run`, which answers a batch
    /// with one output per input, in order.
    pub fn start<F, R>(max: usize, run: F) -> Self
    where
        F: Fn(Vec<I>) -> R + Send + 'static,
        R: Future<Output = Vec<O>> + Send,
    {
        let (requests, mut receiver) = mpsc::unbounded_channel::<Request<I, O>>();
        tokio::spawn(async move {
            let mut pending = Vec::new();
            while receiver.recv_many(&mut pending, max).await > 0 {
                let (inputs, replies): (Vec<_>, Vec<_>) =
                    pending.drain(..).map(|r| (r.input, r.reply)).unzip();
                for (reply, output) in replies.into_iter().zip(run(inputs).await) {
                    let _ = reply.send(output);
                }
            }
        });
        Batcher { requests }
    }

    /// Queues `input` for the next batch at once (so requests made one after the
    /// other are served in that order) and returns its output; `None` when the
    /// batcher stopped.
    pub fn call(&self, input: I) -> impl Future<Output = Option<O>> + Send + use<I, O> {
        let (reply, answer) = oneshot::channel();
        let sent = self.requests.send(Request { input, reply }).is_ok();
        async move {
            if !sent {
                return None;
            }
            answer.await.ok()
        }
    }
}
