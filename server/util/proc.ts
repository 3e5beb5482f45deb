// Linux's /proc/PID/stat, read in one place: field 2 (the command name, in parentheses) may hold spaces and
// parentheses, so the fields are counted after its closing parenthesis.
import { readFileSync } from "node:fs";

/**
 * The fields of /proc/PID/stat from field 3 on (state, ppid, pgrp, session, ...; man 5 proc numbers them
 * from 1, so field n is at index n - 3); undefined elsewhere than Linux or when the process is gone.
 */
export function procStat(pid: number | "self"): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}
