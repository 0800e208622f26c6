import { expect, test } from 'bun:test'
import { join } from 'node:path'

const root = join(import.meta.dir, '..')

/** Runs a linter from node_modules under this Bun and returns everything it printed and its exit code. */
async function run(script: string, args: string[]): Promise<{ output: string; code: number }> {
  const child = Bun.spawn([process.execPath, join(root, 'node_modules', ...script.split('/')), ...args], {
    cwd: root,
    env: { ...process.env, NO_COLOR: '1' },
    stdout: 'pipe',
    stderr: 'pipe',
  })
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited])
  return { output: (stdout + stderr).trim(), code }
}

test('Biome finds nothing to report (the same check as `bun run lint`)', async () => {
  const { output, code } = await run('@biomejs/biome/bin/biome', ['lint', '--error-on-warnings', '--max-diagnostics=none', '.'])
  expect(code === 0 ? '' : output).toBe('')
  expect(code).toBe(0)
}, 60_000)

test('knip finds no unused file, export or dependency (the same check as `bun run lint`)', async () => {
  const { output, code } = await run('knip/bin/knip-bun.js', ['--no-progress'])
  expect(output).toBe('')
  expect(code).toBe(0)
}, 60_000)
