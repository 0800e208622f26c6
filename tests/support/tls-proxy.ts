import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/**
 * Tests behind a real TLS-terminating reverse proxy run Debian's nginx, with a self-signed
 * certificate made by openssl for each proxy. NGINX_PATH and OPENSSL_PATH override the paths (to
 * check the skip and CI behaviour without uninstalling them).
 */
const NGINX_PATH = process.env.NGINX_PATH || '/usr/sbin/nginx'
const OPENSSL_PATH = process.env.OPENSSL_PATH || '/usr/bin/openssl'

const INSTALL_HINT = 'install them with `apt-get install -y nginx openssl` (Debian/Ubuntu)'

const missing = [NGINX_PATH, OPENSSL_PATH].filter((path) => !existsSync(path))

/**
 * True when the proxy tests should be skipped: nginx or openssl is missing and this is not CI. On
 * CI (CI=true) a missing tool is a failure, never a silent skip.
 */
export const skipProxyTests = missing.length > 0 && process.env.CI !== 'true'

if (skipProxyTests) {
  console.warn(`[proxy tests] SKIPPED: ${missing.join(' and ')} not found; ${INSTALL_HINT}. With CI=true these tests fail instead.`)
}

/** Accepts the proxy's self-signed certificate: pass as fetch's `tls` option or node:tls's options. */
export const SELF_SIGNED = { rejectUnauthorized: false } as const

export type TlsProxy = {
  /** https://localhost:<port>, as a browser would name it. */
  base: string
  port: number
  [Symbol.asyncDispose](): Promise<void>
}

/** The load balancer configuration the README shows, as an operator would install it. */
export const DEPLOY_NGINX_CONF = join(import.meta.dir, '..', '..', 'deploy', 'nginx.conf')

/** `text` with the one match of `pattern` replaced; a file that no longer has it is an error, not a silent miss. */
function replaceOnce(text: string, pattern: RegExp, replacement: string): string {
  const matches = text.match(new RegExp(pattern.source, `${pattern.flags.replace('g', '')}g`)) ?? []
  if (matches.length !== 1) throw new Error(`deploy/nginx.conf: expected one match of ${pattern}, found ${matches.length}`)
  return text.replace(pattern, replacement)
}

/**
 * deploy/nginx.conf as it is committed, with this proxy's port, certificate and upstreams put in
 * (each upstream with the parameters the file gives its nodes), inside the few settings that run
 * nginx as a test's own process: in the foreground, one process (master_process off, so nothing
 * outlives it if it is killed), logs on stderr, its files in `dir`. The file leaves Host as nginx's
 * default (the upstream's address), so the client's host reaches a node only as X-Forwarded-Host.
 */
function nginxConf(dir: string, port: number, upstreams: string[]): string {
  let site = readFileSync(DEPLOY_NGINX_CONF, 'utf8')
  const parameters = /^\s*server \S+:\d+( [^;]*)?;$/m.exec(site)?.[1] ?? ''
  const servers = upstreams.map((u) => `  server ${new URL(u).host}${parameters};`).join('\n')
  site = replaceOnce(site, /(upstream pneumatic \{\n(?:\s*#.*\n)*)(?:\s*server [^\n]*\n)+/, `$1${servers}\n`)
  site = replaceOnce(site, /listen 443 ssl;/, `listen 127.0.0.1:${port} ssl;`)
  site = replaceOnce(site, /ssl_certificate\s+\S+;/, `ssl_certificate ${dir}/cert.pem;`)
  site = replaceOnce(site, /ssl_certificate_key\s+\S+;/, `ssl_certificate_key ${dir}/key.pem;`)
  return `daemon off;
master_process off;
error_log stderr notice;
pid ${dir}/nginx.pid;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
${site}
}
`
}

async function run(command: string[]): Promise<void> {
  const child = Bun.spawn(command, { stdin: 'ignore', stdout: 'pipe', stderr: 'pipe' })
  const [code, stderr] = await Promise.all([child.exited, new Response(child.stderr).text()])
  if (code !== 0) throw new Error(`${command[0]} failed (${code}): ${stderr}`)
}

/** A port nothing listens on now. nginx binds it a moment later; a race lost there is retried. */
function freePort(): number {
  const probe = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } })
  const { port } = probe
  probe.stop(true)
  return port
}

const STARTS = 3

/**
 * nginx terminating TLS on a free port of 127.0.0.1 in front of `upstream` (http://host:port), or
 * in front of several, taken in turns (round robin, as a load balancer in front of nodes),
 * once it answers /health through itself; its certificate, settings and logs live in a temporary
 * directory removed on dispose.
 */
export async function startTlsProxy(upstream: string | string[]): Promise<TlsProxy> {
  if (missing.length > 0) {
    throw new Error(`${missing.join(' and ')} not found and CI=true, so the proxy tests fail rather than skip: ${INSTALL_HINT}`)
  }
  const dir = mkdtempSync(join(tmpdir(), 'pneumatic-proxy-'))
  try {
    await run([
      OPENSSL_PATH, 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
    ])
    for (let attempt = 1; ; attempt++) {
      const port = freePort()
      writeFileSync(join(dir, 'nginx.conf'), nginxConf(dir, port, typeof upstream === 'string' ? [upstream] : upstream))
      const started = await launch(dir, port)
      if (started.ok) {
        const { child } = started
        return {
          base: `https://localhost:${port}`,
          port,
          async [Symbol.asyncDispose]() {
            await stop(child)
            rmSync(dir, { recursive: true, force: true })
          },
        }
      }
      if (!started.portTaken || attempt === STARTS) throw new Error(`nginx did not start: ${started.stderr}`)
    }
  } catch (error) {
    rmSync(dir, { recursive: true, force: true })
    throw error
  }
}

type Launch = { ok: true; child: Bun.Subprocess<'ignore', 'ignore', 'pipe'> } | { ok: false; portTaken: boolean; stderr: string }

/**
 * Starts nginx and waits until it serves: its version notice is logged once its listening socket
 * is open (nginx.c: ngx_os_status after ngx_init_cycle), and then /health must answer through it.
 */
async function launch(dir: string, port: number): Promise<Launch> {
  const child = Bun.spawn([NGINX_PATH, '-e', 'stderr', '-p', `${dir}/`, '-c', join(dir, 'nginx.conf')], { stdin: 'ignore', stdout: 'ignore', stderr: 'pipe' })
  let stderr = ''
  let notify = () => {}
  // Read for as long as it runs: a full pipe would stall nginx.
  void (async () => {
    const decoder = new TextDecoder()
    for await (const chunk of child.stderr) {
      stderr += decoder.decode(chunk, { stream: true })
      notify()
    }
  })()
  const serving = new Promise<boolean>((resolve) => {
    notify = () => /\] \d+#\d+: nginx\/\d/.test(stderr) && resolve(true)
    void child.exited.then(() => resolve(false))
  })
  let timer: Timer | undefined
  const deadline = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), 15_000)))
  const up = await Promise.race([serving, deadline]).finally(() => clearTimeout(timer))
  if (up && (await answersHealth(port))) return { ok: true, child }
  await stop(child)
  return { ok: false, portTaken: stderr.includes('Address already in use'), stderr: stderr.trim() || '(nothing on stderr)' }
}

/** GET /health through the proxy, retried a bounded number of times should the first try be refused. */
async function answersHealth(port: number): Promise<boolean> {
  for (let attempt = 0; attempt < 20; attempt++) {
    try {
      const reply = await fetch(`https://localhost:${port}/health`, { tls: SELF_SIGNED })
      if (reply.status === 200) return true
    } catch {
      // Not accepting yet: try again.
    }
  }
  return false
}

async function stop(child: Bun.Subprocess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  child.kill('SIGTERM')
  let timer: Timer | undefined
  const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), 5000)))
  if ((await Promise.race([child.exited, late])) === 'late') child.kill('SIGKILL')
  clearTimeout(timer)
  await child.exited
}
