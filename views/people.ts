import type { User } from '../src/users/model'
import { html, type SafeHtml } from './html'

/**
 * Someone as others see them: the full name, isolated so its direction cannot reorder what
 * follows, then the @username, which nobody else can have (a full name can be copied); just the
 * username without a full name, so a name never shows without the username it belongs to.
 */
export function personName(user: User): SafeHtml {
  return user.full_name ? html`<bdi>${user.full_name}</bdi> <span class="username">@${user.username}</span>` : html`${user.username}`
}

/** Someone by id among the people a view knows (members, and former members who wrote or reacted). */
export function nameOf(people: ReadonlyMap<string, User>, userId: string): SafeHtml {
  const user = people.get(userId)
  return user ? personName(user) : html`Unknown`
}

/** A plain-text name, for a title attribute. */
export const plainName = (people: ReadonlyMap<string, User>, userId: string): string => {
  const user = people.get(userId)
  return user ? (user.full_name ? `${user.full_name} (@${user.username})` : user.username) : 'Unknown'
}
