/** The Bun pub/sub topic that carries one conversation's live messages. */
export const conversationTopic = (conversationId: string) => `conversation:${conversationId}`

/** Rendered pushes for one user's web UI pages. */
export const userHtmlTopic = (userId: string) => `user-html:${userId}`
