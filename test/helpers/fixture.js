"use strict";
Object.defineProperty(exports, "__esModule", { value: true });
exports.FixtureTree = exports.FIXTURES = void 0;
exports.bumpDiskstats = bumpDiskstats;
exports.bumpProcStat = bumpProcStat;
const fs_1 = require("fs");
const os_1 = require("os");
const path_1 = require("path");
exports.FIXTURES = (0, path_1.join)(__dirname, '..', 'fixtures');
/** A private, writable copy of a fixture tree (tests change counters between ticks). */
class FixtureTree {
    root;
    constructor(name = 'host') {
        this.root = (0, fs_1.mkdtempSync)((0, path_1.join)((0, os_1.tmpdir)(), `jouleflow-${name}-`));
        (0, fs_1.cpSync)((0, path_1.join)(exports.FIXTURES, name), this.root, { recursive: true });
    }
    get sysfs() {
        return (0, path_1.join)(this.root, 'sys');
    }
    get procfs() {
        return (0, path_1.join)(this.root, 'proc');
    }
    path(rel) {
        return (0, path_1.join)(this.root, rel);
    }
    read(rel) {
        return (0, fs_1.readFileSync)(this.path(rel), 'utf8');
    }
    write(rel, text) {
        (0, fs_1.writeFileSync)(this.path(rel), text);
    }
    /** Adds `by` to the single number stored in a sysfs-style file. */
    add(rel, by) {
        const next = Number(this.read(rel).trim()) + by;
        this.write(rel, `${next}\n`);
        return next;
    }
    cleanup() {
        (0, fs_1.rmSync)(this.root, { recursive: true, force: true });
    }
}
exports.FixtureTree = FixtureTree;
/** Rewrites one device line of /proc/diskstats, adding sectors read and written. */
function bumpDiskstats(tree, device, sectorsRead, sectorsWritten) {
    const lines = tree.read('proc/diskstats').split('\n');
    const out = lines.map((line) => {
        const f = line.trim().split(/\s+/);
        if (f[2] !== device)
            return line;
        f[5] = String(Number(f[5]) + sectorsRead);
        f[9] = String(Number(f[9]) + sectorsWritten);
        return f.join(' ');
    });
    tree.write('proc/diskstats', out.join('\n'));
}
/** Adds busy and idle jiffies to the aggregate cpu line of /proc/stat. */
function bumpProcStat(tree, busyUser, idle) {
    const text = tree
        .read('proc/stat')
        .split('\n')
        .map((line) => {
        if (!line.startsWith('cpu '))
            return line;
        const f = line.trim().split(/\s+/);
        f[1] = String(Number(f[1]) + busyUser);
        f[4] = String(Number(f[4]) + idle);
        return f.join(' ');
    })
        .join('\n');
    tree.write('proc/stat', text);
}
//# sourceMappingURL=fixture.js.map