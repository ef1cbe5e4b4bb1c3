import { createContext } from 'preact';
import { useContext } from 'preact/hooks';
import type { Scope } from './api';

export interface Session {
  scope: Scope;
  keyRequired: boolean;
}

export const SessionContext = createContext<Session>({ scope: 'read', keyRequired: true });

/** Cancel, retry and pause need an admin key: the API refuses them (403) to any other. */
export function useCanOperate(): boolean {
  return useContext(SessionContext).scope === 'admin';
}
