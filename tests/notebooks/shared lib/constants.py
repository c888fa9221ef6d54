# Databricks notebook source
CONSTANT = 21
