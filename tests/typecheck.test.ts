import { expect, test } from 'bun:test'
import { join } from 'node:path'

test('the whole project type-checks under strict TypeScript', async () => {
  const root = join(import.meta.dir, '..')
  const tsc = Bun.spawn([process.execPath, join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '--noEmit', '-p', root], { stdout: 'pipe', stderr: 'pipe' })
  const output = (await new Response(tsc.stdout).text()) + (await new Response(tsc.stderr).text())
  expect(output).toBe('')
  expect(await tsc.exited).toBe(0)
}, 120_000)
