/**
 * Waits for `work` to settle, at most `ms`: true when it did (resolved or rejected), false when the time ran out. For
 * closing clients that may wait for ever on a server that is gone (BullMQ waits for its connection).
 */
export async function settledWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms)
    timer.unref()
  })
  try {
    return await Promise.race([work.then(() => true, () => true), late])
  } finally {
    clearTimeout(timer)
  }
}
