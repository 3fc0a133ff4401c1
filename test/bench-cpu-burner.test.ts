/**
 * The bench's CPU burner (bench/load/cpu-burner.ts): it takes about the share of a core it was asked
 * for, says what it really took, and its process is gone once closed. Loose bounds: the share depends on
 * what else the machine runs, and only the burner's working at all is proven here.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CpuBurner } from '../bench/load/cpu-burner.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a CPU burner', () => {
  it('keeps a share of a core busy while it runs', async () => {
    const burner = await CpuBurner.start(0.5);
    await sleep(1500);
    const { share } = await burner.close();
    assert.ok(share > 0.15 && share < 0.8, `took ${share.toFixed(2)} of a core, asked 0.5`);
  });

  it('asked for nothing, takes next to nothing', async () => {
    const burner = await CpuBurner.start(0);
    await sleep(1000);
    const { share } = await burner.close();
    assert.ok(share < 0.1, `took ${share.toFixed(2)} of a core, asked 0`);
  });

  it('closes once, however often it is asked to, and its process is gone', async () => {
    const burner = await CpuBurner.start(0.2);
    const [a, b] = await Promise.all([burner.close(), burner.close()]);
    assert.equal(a, b);
    assert.equal(await burner.close(), a);
    assert.throws(() => process.kill(burner.pid, 0), { code: 'ESRCH' });
  });

  it('fails its start, instead of waiting, when its process cannot start', async () => {
    // A share the burner's process refuses: it exits before it spins.
    await assert.rejects(
      CpuBurner.start(Number.NaN),
      /the CPU burner did not start: the other process exited/,
    );
  });

  it('says so when its process ended before it was closed, rather than report a share', async () => {
    const burner = await CpuBurner.start(0.1);
    process.kill(burner.pid, 'SIGKILL');
    await sleep(300);
    await assert.rejects(burner.close(), /the CPU burner ended on its own \(SIGKILL\)/);
    await assert.rejects(burner.close(), /ended on its own/);
  });
});
