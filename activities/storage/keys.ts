import { FailureType, failure } from '../../common/failures';

/** Refuses keys that could escape the store's root. */
export function checkKey(key: string): string {
  const parts = key.split('/');
  const last = parts.length - 1;
  const bad =
    key.length === 0 ||
    key.startsWith('/') ||
    key.includes('\\') ||
    key.includes('\0') ||
    parts.some((p, i) => p === '..' || p === '.' || (p === '' && i !== last));
  if (bad)
    throw failure(
      FailureType.InvalidInput,
      `storage key ${JSON.stringify(key)} is not valid: use a/b/c without .. or leading /`,
    );
  return key;
}
