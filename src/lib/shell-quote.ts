/**
 * One word for a POSIX shell, quoted only when it needs it: `shellQuote("it's")` -> `'it'\''s'`, while
 * words of safe characters (`uname`, `/srv/cw`, `a=b`) stay as they are. Used where a command line is shown
 * to a user (`cw-containerctl stop`) and where sshd hands a remote command to the node's shell.
 */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9._\/:@%+=,-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}
