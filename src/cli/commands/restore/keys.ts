/** The --key help every signing command shows (start, approve, reject, rollback). */
export const KEY_HELP =
  'SSH key to sign with: a private key, or a .pub whose private key is in ssh-agent; "none" to send unsigned (default: DBOPS_SIGNING_KEY, else the ssh-agent\'s first key, else ~/.ssh/id_ed25519)';
