import { describe, expect, test } from 'bun:test'
import { BUN_BACKPRESSURE_LIMIT, PER_SOCKET_BYTES, slowestOverBudget, SWEEP_EVERY } from '../../src/realtime/buffers'

const MiB = 1024 * 1024

describe('which slow readers are disconnected', () => {
  test('every reader over its own limit, whatever the budget', () => {
    const buffers = [
      { socket: 'over', bytes: PER_SOCKET_BYTES + 1 },
      { socket: 'at', bytes: PER_SOCKET_BYTES },
      { socket: 'small', bytes: 10 },
    ]
    expect(slowestOverBudget(buffers, 64 * MiB)).toEqual({ overSocketLimit: ['over'], forBudget: [] })
  })

  test('past the budget, the readers with the most buffered first, until the rest fit in it', () => {
    const buffers = [
      { socket: 'a', bytes: 0.3 * MiB },
      { socket: 'b', bytes: 0.9 * MiB },
      { socket: 'c', bytes: 0.5 * MiB },
      { socket: 'd', bytes: 0.8 * MiB },
    ]
    expect(slowestOverBudget(buffers, 1.2 * MiB)).toEqual({ overSocketLimit: [], forBudget: ['b', 'd'] })
    expect(slowestOverBudget(buffers, 2.5 * MiB)).toEqual({ overSocketLimit: [], forBudget: [] })
  })

  test('those over their own limit no longer count against the budget', () => {
    const buffers = [
      { socket: 'huge', bytes: 1.5 * MiB },
      { socket: 'a', bytes: 0.6 * MiB },
      { socket: 'b', bytes: 0.5 * MiB },
    ]
    expect(slowestOverBudget(buffers, 1.1 * MiB)).toEqual({ overSocketLimit: ['huge'], forBudget: [] })
  })

  test("Bun's own limit is past what a socket can gain unseen: a sweep's worth, and 32 queued frames of 32 KiB", () => {
    expect(BUN_BACKPRESSURE_LIMIT).toBeGreaterThanOrEqual(PER_SOCKET_BYTES + 3 * SWEEP_EVERY + 32 * 32 * 1024)
  })
})
