// A real OpenSSH ssh-agent for tests: started in the foreground on its own socket and handed out only
// once it answers, holding the given private keys.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts `ssh-agent -D -a SOCK` and adds `privateKeyPaths`; kill the returned process when done. */
export async function startSshAgent(sock: string, privateKeyPaths: readonly string[] = []): Promise<ChildProcess> {
  const child = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' });
  const env = { ...process.env, SSH_AUTH_SOCK: sock };
  for (let i = 0; i < 300 && !existsSync(sock); i++) await pause(10);
  if (!existsSync(sock)) {
    child.kill();
    throw new Error('ssh-agent did not create its socket');
  }
  // The socket file appears at bind(), a moment before listen(): wait until the agent answers
  // (`ssh-add -l` exits 2 only when it cannot reach the agent), or an empty agent looks stale.
  for (let i = 0; i < 300 && spawnSync('ssh-add', ['-l'], { env }).status === 2; i++) await pause(10);
  for (const key of privateKeyPaths) execFileSync('ssh-add', ['-q', key], { env, stdio: 'pipe' });
  return child;
}
