/**
 * Aborted by the first SIGTERM or SIGINT, with the signal's name as its reason. main.ts imports this
 * module before any other: from the first moments of start-up a signal is then caught (and acted on as
 * soon as main is ready) instead of ending the process outright, whatever start-up had opened by then.
 */
const controller = new AbortController();
const onSignal = (signal: NodeJS.Signals): void => {
  if (!controller.signal.aborted) controller.abort(signal);
};
process.on('SIGTERM', onSignal);
process.on('SIGINT', onSignal);

export const stopSignal: AbortSignal = controller.signal;
