import { describe, expect, test } from 'bun:test'
import type { DomainEvent } from '../../src/shared/events'
import { createLocalBus } from '../../src/realtime/bus'

const event: DomainEvent = {
  type: 'conversation.changed',
  change: {
    type: 'message',
    conversation_id: 'c',
    event_seq: 1,
    message: { id: 'm', message_id: 'k', sender_id: 'u', conversation_id: 'c', content: 'hi', created_at: '2026-01-01T00:00:00.000Z', seq: 1, edited_at: null, deleted_at: null, reply_to: null, reactions: [] },
  },
}

describe('createLocalBus', () => {
  test('delivers each event to every subscriber, in order of subscription', () => {
    const bus = createLocalBus()
    const seen: string[] = []
    bus.subscribe((e) => seen.push(`a:${e.type}`))
    bus.subscribe((e) => seen.push(`b:${e.type}`))
    bus.publish(event)
    expect(seen).toEqual(['a:conversation.changed', 'b:conversation.changed'])
  })

  test('stops delivering after unsubscribe', () => {
    const bus = createLocalBus()
    const seen: DomainEvent[] = []
    const unsubscribe = bus.subscribe((e) => seen.push(e))
    unsubscribe()
    bus.publish(event)
    expect(seen).toEqual([])
  })

  test('a failing subscriber neither fails the publisher nor starves the others', () => {
    const errors: unknown[] = []
    const bus = createLocalBus((error) => errors.push(error))
    const seen: DomainEvent[] = []
    bus.subscribe(() => {
      throw new Error('boom')
    })
    bus.subscribe((e) => seen.push(e))
    expect(() => bus.publish(event)).not.toThrow()
    expect(seen).toEqual([event])
    expect(errors).toEqual([new Error('boom')])
  })
})
