/** The Bun pub/sub topic that carries one conversation's live messages. */
export const conversationTopic = (conversationId: string) => `conversation:${conversationId}`
