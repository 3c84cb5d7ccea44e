/**
 * Passes a streamed response body through unchanged and calls `onEnd` exactly once: when the body
 * has been read to its end (before the client sees the end, so a slot released here is free for
 * the client's next request), when reading it failed, or when the client cancelled it.
 */
export function whenStreamEnds(body: ReadableStream<Uint8Array>, onEnd: () => void | Promise<void>): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let ended = false;
  const end = async () => {
    if (ended) return;
    ended = true;
    await onEnd();
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await reader.read();
        if (done) {
          await end();
          controller.close();
        } else controller.enqueue(value);
      } catch (error) {
        controller.error(error);
        await end();
      }
    },
    async cancel(reason) {
      await reader.cancel(reason).catch(() => undefined);
      await end();
    },
  });
}
